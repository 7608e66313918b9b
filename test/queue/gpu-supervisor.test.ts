import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { GpuSupervisor, childWorkerArgs, parseGpuList } from '../../src/queue/gpu-supervisor.ts';
import { DeviceError, InvalidParameterError } from '../../src/errors.ts';

const adapters = [
  { index: 0, backend: 'vulkan', name: 'GPU A' },
  { index: 1, backend: 'vulkan', name: 'GPU B' },
  { index: 2, backend: 'vulkan', name: 'GPU C' },
];

/** A stand-in child: records the signals sent and exits when killed. */
class FakeChild extends EventEmitter {
  static nextPid = 1000;
  readonly pid = FakeChild.nextPid++;
  readonly signals: string[] = [];
  constructor(readonly args: string[], readonly env: NodeJS.ProcessEnv) { super(); }
  kill(signal: NodeJS.Signals): boolean {
    this.signals.push(signal);
    setImmediate(() => this.emit('exit', null, signal));
    return true;
  }
}

function harness(gpus: number[]) {
  const children: FakeChild[] = [];
  const logs: string[] = [];
  const sup = new GpuSupervisor({
    gpus, args: ['--queues', 'batch', '--ep', 'webgpu'], minBackoffMs: 5, maxBackoffMs: 20, log: (l) => logs.push(l),
    spawn: (args, env) => { const c = new FakeChild(args, env); children.push(c); return c as unknown as ChildProcess; },
  });
  return { sup, children, logs };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('parseGpuList: all, a list, and refusals with exact messages', () => {
  assert.deepEqual(parseGpuList('all', adapters), [0, 1, 2]);
  assert.deepEqual(parseGpuList('2,0', adapters), [2, 0]);
  assert.throws(() => parseGpuList('0,5', adapters), (e: unknown) => e instanceof DeviceError &&
    e.message === 'GPU adapter 5 does not exist; found 3: 0 GPU A (vulkan), 1 GPU B (vulkan), 2 GPU C (vulkan)');
  assert.throws(() => parseGpuList('0,x', adapters), InvalidParameterError);
  assert.throws(() => parseGpuList('1,1', adapters), InvalidParameterError);
  assert.throws(() => parseGpuList('all', []), DeviceError);
  // Identical GPUs: dawn.node selects by name, so the second cannot be reached from one namespace.
  const twins = [{ index: 0, backend: 'vulkan', name: 'NVIDIA H200' }, { index: 1, backend: 'vulkan', name: 'NVIDIA H200' }];
  assert.deepEqual(parseGpuList('0', twins), [0]);
  assert.throws(() => parseGpuList('all', twins), /GPU adapter 1 \(NVIDIA H200\) has the same name as adapter 0/);
});

test('childWorkerArgs drops --gpus/--dry-run and adds the WebGPU engine unless --ep was given', () => {
  assert.deepEqual(childWorkerArgs(['--gpus', 'all', '--queues', 'batch', '--dry-run']), ['--queues', 'batch', '--ep', 'webgpu']);
  assert.deepEqual(childWorkerArgs(['--gpus=0,1', '--ep', 'cpu']), ['--ep', 'cpu']);
});

test('one child per GPU with its LAMINA_GPU; a crash restarts that GPU only; SIGTERM is forwarded and ends the run', async () => {
  const { sup, children } = harness([0, 1, 2]);
  const done = sup.run();
  assert.equal(children.length, 3);
  assert.deepEqual(children.map((c) => c.env.LAMINA_GPU), ['0', '1', '2']);
  assert.deepEqual(children[0]!.args, ['--queues', 'batch', '--ep', 'webgpu']);
  children[1]!.emit('exit', 1, null);
  await tick(40);
  assert.equal(children.length, 4);
  assert.equal(children[3]!.env.LAMINA_GPU, '1');
  assert.equal(sup.started, 4);
  sup.stop('SIGTERM');
  for (const i of [0, 2, 3]) assert.deepEqual(children[i]!.signals, ['SIGTERM']);
  assert.deepEqual(children[1]!.signals, []);
  assert.equal(await done, 0);
});

test('a child that exits cleanly is not restarted; the run ends with the last one', async () => {
  const { sup, children } = harness([0, 1]);
  const done = sup.run();
  children[0]!.emit('exit', 0, null);
  children[1]!.emit('exit', 0, null);
  assert.equal(await done, 0);
  assert.equal(children.length, 2);
});

test('backoff doubles per consecutive crash and a stop during the wait prevents the restart', async () => {
  const { sup, children, logs } = harness([0]);
  const done = sup.run();
  children[0]!.emit('exit', 3, null); // restart after 5 ms
  await tick(30);
  assert.equal(children.length, 2);
  children[1]!.emit('exit', null, 'SIGSEGV'); // second crash: 10 ms
  sup.stop('SIGINT');
  await tick(30);
  assert.equal(children.length, 2);
  assert.equal(await done, 0);
  const restarts = logs.filter((l) => l.includes('restarting'));
  assert.match(restarts[0]!, /GPU 0 worker exited with 3; restarting in 5 ms \(crash 1\)/);
  assert.match(restarts[1]!, /GPU 0 worker killed by SIGSEGV; restarting in 10 ms \(crash 2\)/);
});
