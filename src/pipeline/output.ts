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

/**
 * Writes `data` to `dir/name` via a temporary file and rename (atomic on one filesystem). Text that
 * grows with the slide (a row per tile) can come as lines: they are written in chunks of about
 * 64 KiB as they are made, so the whole text is never held in memory.
 */
export async function writeAtomic(dir: string, name: string, data: string | Buffer | Iterable<string>): Promise<void> {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  await writeFile(tmp, typeof data === 'string' || Buffer.isBuffer(data) ? data : chunkLines(data));
  await rename(tmp, join(dir, name));
}

/** Joins lines (each ending with its own newline or not, as given) into chunks of about `chunkChars`. */
export function* chunkLines(lines: Iterable<string>, chunkChars = 1 << 16): Generator<string> {
  let parts: string[] = [];
  let length = 0;
  for (const line of lines) {
    parts.push(line);
    length += line.length;
    if (length >= chunkChars) {
      yield parts.join('');
      parts = [];
      length = 0;
    }
  }
  if (parts.length > 0) yield parts.join('');
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
