import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLIDES } from '../api/harness.ts';
import { startService } from './service-harness.ts';

function lamina(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/lamina.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

test('lamina submit uploads a folder as one batch: the non-slide fails alone, the slide is analysed, a second submit resumes', { timeout: 180_000 }, async () => {
  const svc = await startService();
  const folder = await mkdtemp(join(tmpdir(), 'lamina-submit-'));
  try {
    await symlink(join(SLIDES, 'CMU-1-Small-Region.svs'), join(folder, 'CMU-1-Small-Region.svs'));
    await writeFile(join(folder, 'notes.svs'), 'this is not a slide\n');
    svc.startWorker(['--no-sandbox']);
    const args = ['submit', folder, '--server', svc.api.url, '--params', JSON.stringify({ model: 'untrained-test-tiny', batchSize: 16 }), '--wait'];
    const first = await lamina(args);
    assert.equal(first.code, 1, first.out);
    assert.match(first.out, /CMU-1-Small-Region\.svs: uploaded as [0-9a-f]{24}/);
    assert.match(first.out, /notes\.svs: rejected: 415 /);
    assert.match(first.out, /CMU-1-Small-Region\.svs\s+completed\s+\d\.\d{3}/);
    assert.match(first.out, /notes\.svs\s+rejected\s+415/);

    const again = await lamina(args);
    assert.match(again.out, /CMU-1-Small-Region\.svs: already stored/);
    const { analyses } = await (await fetch(`${svc.api.url}/api/analyses`)).json();
    assert.equal(analyses.length, 1);
    assert.equal(analyses[0].runs, 1, 'the finished analysis was not redone');
  } finally {
    await rm(folder, { recursive: true, force: true });
    await svc.stop();
  }
});
