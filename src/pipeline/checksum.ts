/**
 * SHA-256 of a slide input, streamed (never the whole file in memory). A folder (a DICOM series)
 * hashes its regular files in name order, each as name, NUL, bytes, so renames change the sum.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from './stage.ts';

/**
 * Hex SHA-256 and total byte size of a file or folder.
 * @example const { sha256 } = await checksumInput('slide.svs');
 */
export async function checksumInput(path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  const info = await stat(path);
  let bytes = 0;
  const files = info.isDirectory()
    ? (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort()
    : [null];
  for (const name of files) {
    if (signal) throwIfAborted(signal, 'checksum');
    const file = name === null ? path : join(path, name);
    if (name !== null) hash.update(`${name}\0`);
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  }
  return { sha256: hash.digest('hex'), bytes };
}
