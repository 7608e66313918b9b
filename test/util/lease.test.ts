// Lease (src/util/lease.ts): a retired resource outlives its holders and is disposed once, by the
// last release; the idle delay retires it and a new acquire cancels that; a failing dispose reaches
// onError or a warning; an idle timer never keeps node running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Lease } from '../../src/util/lease.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function counted(options = {}) {
  const disposed: string[] = [];
  const lease = new Lease('plan', (v) => { disposed.push(v); }, options);
  return { lease, disposed };
}

test('retired while held: disposed only on the last release, exactly once; retire resolves after it', async () => {
  const { lease, disposed } = counted();
  assert.equal(lease.acquire(), 'plan');
  lease.acquire();
  let settled = false;
  const done = lease.retire().then(() => { settled = true; });
  assert.equal(lease.retire(), lease.retire(), 'one disposal however often retired');
  lease.release();
  await sleep(0);
  assert.deepEqual(disposed, []);
  assert.equal(settled, false);
  lease.release();
  assert.deepEqual(disposed, ['plan'], 'a synchronous dispose runs inside the last release');
  await done;
  assert.deepEqual(disposed, ['plan']);
  assert.throws(() => lease.acquire(), /after it was retired/);
  assert.throws(() => lease.release(), /more often than acquired/);
});

test('unheld: retire disposes at once; an async dispose is awaited by retire', async () => {
  let closed = false;
  const lease = new Lease({}, async () => { await sleep(20); closed = true; });
  await lease.retire();
  assert.equal(closed, true);
});

test('idle delay: disposed after idleMs unheld; an acquire in between cancels the timer', async () => {
  const { lease, disposed } = counted({ idleMs: 40 });
  lease.acquire();
  lease.release();
  await sleep(20);
  lease.acquire(); // cancels the first timer
  await sleep(40);
  assert.deepEqual(disposed, [], 'held: never idle-disposed');
  lease.release();
  await sleep(20);
  assert.deepEqual(disposed, [], 'the timer restarts at the release');
  await sleep(60);
  assert.deepEqual(disposed, ['plan']);
  assert.equal(lease.retired, true);
});

test('a failing dispose reaches onError (sync and async), else a console warning; retire still resolves', async (t) => {
  const errors: unknown[] = [];
  await new Lease(1, () => { throw new Error('sync boom'); }, { onError: (e) => errors.push(e) }).retire();
  await new Lease(2, async () => { throw new Error('async boom'); }, { onError: (e) => errors.push(e) }).retire();
  assert.deepEqual(errors.map((e) => (e as Error).message), ['sync boom', 'async boom']);
  const warn = t.mock.method(console, 'warn', () => undefined);
  await new Lease(3, () => { throw new Error('lost device'); }, { name: 'GPU scorer' }).retire();
  assert.equal(warn.mock.callCount(), 1);
  assert.match(String(warn.mock.calls[0]!.arguments[0]), /GPU scorer.*lost device/);
});

test('an idle timer does not keep node alive', () => {
  const lease = new URL('../../src/util/lease.ts', import.meta.url).href;
  const script = `import { Lease } from '${lease}';
    const l = new Lease(0, () => console.log('disposed'), { idleMs: 600000 });
    l.acquire(); l.release(); console.log('released');`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'released', 'exited without waiting for the idle timer');
  assert.ok(Date.now() - t0 < 30_000);
});
