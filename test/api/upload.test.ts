import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SLIDES, startApi } from './harness.ts';

const svs = await readFile(join(SLIDES, 'CMU-1-Small-Region.svs'));

/** Nothing under slides/ and nothing left in staging: a rejected upload leaves no trace. */
async function assertNothingStored(dataDir: string) {
  assert.deepEqual(await readdir(join(dataDir, 'slides')).catch(() => []), []);
  assert.deepEqual(await readdir(join(dataDir, '.tmp')).catch(() => []), []);
}

test('raw upload stores the slide with its checksum and reader metadata; a second upload is a duplicate', async () => {
  const api = await startApi();
  try {
    const r = await fetch(`${api.base}/api/slides?filename=CMU-1-Small-Region.svs`, { method: 'POST', body: svs, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 201);
    const { slide, duplicate } = await r.json();
    assert.equal(duplicate, false);
    assert.equal(slide.sha256, createHash('sha256').update(svs).digest('hex'));
    assert.equal(slide.size, svs.length);
    assert.equal(slide.format, 'aperio');
    assert.deepEqual([slide.width, slide.height], [2220, 2967]);
    assert.equal(slide.fileKey, undefined, 'storage keys are not exposed');
    const stored = await readFile(join(api.dataDir, 'slides', slide.id, 'slide.svs'));
    assert.ok(stored.equals(svs));

    const form = new FormData();
    form.append('note', 'ignored');
    form.append('file', new Blob([svs]), 'again.svs');
    const r2 = await fetch(`${api.base}/api/slides`, { method: 'POST', body: form });
    assert.equal(r2.status, 200);
    const second = await r2.json();
    assert.equal(second.duplicate, true);
    assert.equal(second.slide.id, slide.id);

    const list = await (await fetch(`${api.base}/api/slides`)).json();
    assert.deepEqual(list.slides.map((s: { id: string }) => s.id), [slide.id]);
    assert.equal((await fetch(`${api.base}/api/slides/${slide.id}`)).status, 200);

    assert.equal((await fetch(`${api.base}/api/slides/${slide.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${api.base}/api/slides/${slide.id}`)).status, 404);
    await assertNothingStored(api.dataDir);
  } finally {
    await api.stop();
  }
});

test('bad uploads are rejected with their status and reason, and nothing is kept', async () => {
  const api = await startApi({ config: { maxUploadBytes: 1024 * 1024 * 3 } });
  try {
    const post = (body: BodyInit, name = 'x.svs') => fetch(`${api.base}/api/slides?filename=${encodeURIComponent(name)}`, { method: 'POST', body });

    const garbage = await post(randomBytes(50_000), 'garbage.svs');
    assert.equal(garbage.status, 415);
    assert.match((await garbage.json()).error.message, /garbage\.svs|not|unsupported|recogn/i);

    const truncated = await post(svs.subarray(0, Math.floor(svs.length / 2)), 'truncated.svs');
    assert.equal(truncated.status, 422);
    const tj = await truncated.json();
    assert.equal(tj.error.code, 'corrupt_slide');

    const big = await post(Buffer.alloc(1024 * 1024 * 3 + 1), 'big.svs');
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error.code, 'payload_too_large');

    const traversal = await post(svs, '../../etc/passwd');
    assert.equal(traversal.status, 400);
    assert.match((await traversal.json()).error.message, /filename/);

    const form = new FormData();
    form.append('file', new Blob([svs]), '..\\evil.svs');
    assert.equal((await fetch(`${api.base}/api/slides`, { method: 'POST', body: form })).status, 400);

    const noFile = new FormData();
    noFile.append('other', new Blob([svs]), 'a.svs');
    const nf = await fetch(`${api.base}/api/slides`, { method: 'POST', body: noFile });
    assert.equal(nf.status, 400);
    assert.match((await nf.json()).error.message, /no file field named 'file'/);

    const noName = await fetch(`${api.base}/api/slides`, { method: 'POST', body: svs });
    assert.equal(noName.status, 400);

    await assertNothingStored(api.dataDir);
  } finally {
    await api.stop();
  }
});

test('a multipart upload over the limit is cut off with 413 and nothing kept', async () => {
  const api = await startApi({ config: { maxUploadBytes: 100_000 } });
  try {
    const form = new FormData();
    form.append('file', new Blob([randomBytes(90_000), randomBytes(90_000)]), 'big.svs');
    const r = await fetch(`${api.base}/api/slides`, { method: 'POST', body: form });
    assert.equal(r.status, 413);
    await assertNothingStored(api.dataDir);
  } finally {
    await api.stop();
  }
});

test('with LAMINA_API_TOKEN set, writes need the bearer token and reads do not', async () => {
  const api = await startApi({ config: { token: 's3cret' } });
  try {
    const url = `${api.base}/api/slides?filename=a.svs`;
    const none = await fetch(url, { method: 'POST', body: svs });
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error.code, 'unauthorized');
    assert.equal((await fetch(url, { method: 'POST', body: svs, headers: { authorization: 'Bearer wrong!' } })).status, 401);
    await assertNothingStored(api.dataDir);
    assert.equal((await fetch(`${api.base}/api/slides`)).status, 200);
    const ok = await fetch(url, { method: 'POST', body: svs, headers: { authorization: 'Bearer s3cret' } });
    assert.equal(ok.status, 201);
  } finally {
    await api.stop();
  }
});

test('uploads are rate limited per client', async () => {
  const api = await startApi({ config: { uploadsPerMinute: 2 } });
  try {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${api.base}/api/slides?filename=g.bin`, { method: 'POST', body: 'nope' })).status);
    assert.deepEqual(statuses.slice(0, 1), [415]);
    assert.equal(statuses[2], 429);
  } finally {
    await api.stop();
  }
});
