/**
 * Adapter choice on whatever Dawn finds (lavapipe in CI: XDG_RUNTIME_DIR=/tmp): the listing, opening
 * index 0, an out-of-range index failing at the CLI door, and `worker --gpus all --dry-run` planning
 * one child per adapter. Skipped where Dawn finds no adapter at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeAdapters, KERNEL_FEATURES } from '../../kernels/gpu/adapter-details.ts';
import { GpuContext } from '../../kernels/gpu/gpu-context.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const slide = resolve(root, '../shared/slides/CMU-1-Small-Region.svs');
const adapters = await describeAdapters().catch(() => []);
const skip = adapters.length ? false : 'no WebGPU adapter';

function lamina(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(root, 'bin/lamina.js'), ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('describeAdapters lists every adapter with its fields', { skip }, () => {
  assert.ok(adapters.length >= 1);
  adapters.forEach((a, i) => {
    assert.equal(a.index, i);
    assert.ok(a.name.length > 0 && a.description.length > 0 && a.backend.length > 0);
    assert.equal(typeof a.vendor, 'string');
    assert.equal(typeof a.architecture, 'string');
    for (const f of a.features) assert.ok((KERNEL_FEATURES as readonly string[]).includes(f), f);
  });
});

test('GpuContext opens adapter 0 and it is the adapter listed as 0', { skip }, async () => {
  const ctx = await GpuContext.create({ adapterIndex: 0 });
  try {
    assert.equal(ctx.adapterInfo.description || ctx.adapterInfo.device, adapters[0]!.description);
    assert.equal(ctx.capabilities.shaderF16, adapters[0]!.features.includes('shader-f16'));
  } finally {
    await ctx.destroy();
  }
});

test('lamina gpus prints one line per adapter', { skip }, async () => {
  const r = await lamina(['gpus']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => /^\d+ {2}/.test(l));
  assert.deepEqual(lines.map((l) => Number(l.split(' ')[0])), adapters.map((a) => a.index));
  assert.ok(lines[0]!.includes(adapters[0]!.description));
});

test('an out-of-range --gpu fails at the door with the adapter list and a non-zero exit', { skip }, async () => {
  const bad = adapters.length + 5;
  const expected = `lamina: GPU adapter ${bad} does not exist; found ${adapters.length}: ${adapters.map((a) => `${a.index} ${a.name} (${a.backend})`).join(', ')}`;
  const out = mkdtempSync(join(tmpdir(), 'lamina-gpu-'));
  try {
    const r = await lamina(['analyze', slide, '--out', out, '--engine', 'webgpu', '--gpu', String(bad)]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.split('\n').includes(expected), r.stderr);
    const w = await lamina(['worker', '--queues', 'batch'], { LAMINA_GPU: String(bad), REDIS_URL: 'redis://127.0.0.1:1' });
    assert.equal(w.code, 1);
    assert.ok(w.stderr.split('\n').includes(expected), w.stderr);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('worker --gpus all --dry-run plans exactly one child per adapter, each with its LAMINA_GPU', { skip }, async () => {
  const r = await lamina(['worker', '--gpus', 'all', '--queues', 'batch', '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  const plans = r.stdout.split('\n').filter((l) => l.startsWith('LAMINA_GPU='));
  assert.deepEqual(plans, adapters.map((a) => `LAMINA_GPU=${a.index} lamina worker --queues batch --ep webgpu`));
});
