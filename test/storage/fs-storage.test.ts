import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FsStorage } from '../../src/storage/fs-storage.ts';

async function withStorage(fn: (s: FsStorage, root: string) => Promise<void>) {
  const root = await mkdtemp(join(tmpdir(), 'lamina-storage-'));
  try {
    await fn(new FsStorage(root), root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('put/get/read/stat/list/delete round-trip, streams included', () => withStorage(async (s) => {
  assert.equal(await s.put('a/b/one.json', '{"x":1}'), 7);
  assert.equal(await s.put('a/b/two.bin', Readable.from([Buffer.from('he'), Buffer.from('llo')])), 5);
  assert.equal((await s.read('a/b/two.bin')).toString(), 'hello');
  const chunks: Buffer[] = [];
  for await (const c of await s.get('a/b/two.bin', { start: 1, end: 3 })) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'ell');
  assert.equal((await s.stat('a/b/one.json'))?.size, 7);
  assert.equal(await s.stat('a/b/none'), null);
  assert.deepEqual(await s.list('a/b'), ['one.json', 'two.bin']);
  assert.deepEqual(await s.list('nothing'), []);
  await s.delete('a/b/one.json');
  assert.deepEqual(await s.list('a/b'), ['two.bin']);
  await s.delete('a');
  assert.deepEqual(await s.list('a'), []);
  await s.delete('a'); // absent is fine
  await assert.rejects(s.read('a/b/two.bin'), { code: 'not_found' });
}));

test('keys that could leave the root are refused', () => withStorage(async (s) => {
  for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '', '.tmp/x', 'a/.hidden', 'a\\b']) {
    await assert.rejects(s.put(key, 'x'), { code: 'invalid_parameter' }, key);
  }
}));

test('writes are atomic: a failed stream leaves neither the key nor a staging file', () => withStorage(async (s, root) => {
  await s.put('k', 'old');
  const failing = new Readable({ read() { this.push(Buffer.alloc(1000)); this.destroy(new Error('client went away')); } });
  await assert.rejects(s.put('k', failing), /client went away/);
  assert.equal((await s.read('k')).toString(), 'old');
  assert.deepEqual(await readdir(join(root, '.tmp')), []);
}));

test('putIfAbsent creates once; commit moves a staged file into place', () => withStorage(async (s) => {
  assert.equal(await s.putIfAbsent('once', 'first'), true);
  assert.equal(await s.putIfAbsent('once', 'second'), false);
  assert.equal((await s.read('once')).toString(), 'first');
  const staged = await s.stagingPath();
  await writeFile(staged, 'big');
  await s.commit(staged, 'slides/x/slide.svs');
  assert.equal((await s.read('slides/x/slide.svs')).toString(), 'big');
  await assert.rejects(s.commit('/etc/passwd', 'y'), { code: 'invalid_parameter' });
  assert.equal(await s.localPath('once'), join(s.root, 'once'));
}));
