/**
 * The result folder. Files are written through a temporary name and renamed, and `result.json` is
 * written last: a folder without result.json is never a finished analysis. Before a run, stale
 * outputs of an earlier run are removed so a half-written folder cannot mix two runs.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** File names of an analysis result folder. */
export const OUTPUT_FILES = {
  result: 'result.json',
  heatmap: 'heatmap.png',
  grid: 'scores.f32',
  regions: 'regions.geojson',
  tiles: 'tiles.csv',
} as const;

/** Creates the folder and removes outputs of an earlier run (result.json first). */
export async function prepareOutputDir(outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  await rm(join(outDir, OUTPUT_FILES.result), { force: true });
  for (const name of Object.values(OUTPUT_FILES)) await rm(join(outDir, name), { force: true });
}

/** Removes every output file (after a failure or cancellation). */
export async function removeOutputs(outDir: string): Promise<void> {
  for (const name of Object.values(OUTPUT_FILES)) await rm(join(outDir, name), { force: true }).catch(() => {});
}

/** Writes `data` to `dir/name` via a temporary file and rename (atomic on one filesystem). */
export async function writeAtomic(dir: string, name: string, data: string | Buffer): Promise<void> {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  await writeFile(tmp, data);
  await rename(tmp, join(dir, name));
}

let cachedVersion: string | null = null;

/** Lamina's version from package.json. */
export async function softwareVersion(): Promise<string> {
  if (cachedVersion === null) {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    cachedVersion = pkg.version;
  }
  return cachedVersion;
}
