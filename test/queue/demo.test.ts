import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPrefix } from './redis-harness.ts';

test('lamina demo --exit-when-done starts Redis (or uses REDIS_URL), the API and a worker, analyses the sample slide and exits 0', { timeout: 240_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lamina-demo-'));
  const prefix = `lamina-test-demo-${randomUUID().slice(0, 8)}`;
  try {
    const { code, out } = await new Promise<{ code: number; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['bin/lamina.js', 'demo', '--port', '0', '--model', 'untrained-test-tiny', '--exit-when-done'], {
        env: { ...process.env, LAMINA_DATA_DIR: dataDir, LAMINA_QUEUE_PREFIX: prefix },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      child.on('exit', (c) => resolve({ code: c ?? -1, out }));
    });
    assert.equal(code, 0, out);
    assert.match(out, process.env.REDIS_URL ? /API and viewer at/ : /started redis-server on port \d+/);
    assert.match(out, /Viewer: http:\/\/127\.0\.0\.1:\d+\/slides\/[0-9a-f]{24}\?analysis=[0-9a-f]{24}/);
    assert.match(out, /demo: completed (\d+)\/\1 tiles/);
    assert.match(out, /slide score \d/);
    // It says which encoder it used, when queueing and with the result.
    assert.match(out, /analysis [0-9a-f]{24} \w+ \(encoder untrained-test-tiny\)/);
    assert.match(out, /^demo: model: untrained-test-tiny \(UNTRAINED: fixed-seed random weights\)$/m);
  } finally {
    if (process.env.REDIS_URL) await freshPrefix(process.env.REDIS_URL, prefix).cleanup();
    await rm(dataDir, { recursive: true, force: true });
  }
});
