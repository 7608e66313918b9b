/** Shared fixtures for encoder tests: a temporary model cache and seeded inputs. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../src/encoder/vit-random.ts';

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'lamina-enc-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Seeded normalised-looking pixels, roughly N(0,1)-scaled. */
export function randomPixels(n: number, size: number, seed: number): Float32Array {
  return new SeededRandom(seed).fillUniform(new Float32Array(n * 3 * size * size), 1);
}

/** Cosine similarity of two rows. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
  return dot / Math.sqrt(na * nb);
}

/** Worst per-row cosine over `rows` rows of width `d`. */
export function minRowCosine(a: Float32Array, b: Float32Array, d: number): number {
  let worst = 1;
  for (let i = 0; i < a.length / d; i++) worst = Math.min(worst, cosine(a.subarray(i * d, (i + 1) * d), b.subarray(i * d, (i + 1) * d)));
  return worst;
}
