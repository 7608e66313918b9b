import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { InvalidParameterError, invalidParameter } from '../errors.ts';
import { PayloadTooLargeError } from './http-errors.ts';

/** A file received to a staging path, hashed on the way. */
export interface ReceivedFile {
  path: string;
  size: number;
  sha256: string;
  /** The client's file name after `safeFileName`. */
  filename: string;
}

/**
 * Accepts a client file name only if it is a plain name: no path separators, no `..`, no control
 * characters, at most 255 bytes. Refusing (rather than silently stripping) makes a traversal
 * attempt visible to the client as a 400.
 */
export function safeFileName(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0) throw invalidParameter('filename', 'non-empty file name', raw);
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f\u007f]/.test(raw) || raw === '.' || raw.includes('..') || Buffer.byteLength(raw) > 255) {
    throw invalidParameter('filename', 'plain file name without path separators, "..", or control characters', raw);
  }
  return raw;
}

/** Counts and hashes bytes as they pass, failing once more than `maxBytes` went through. */
class HashingLimiter extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  constructor(private readonly maxBytes: number) { super(); }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) return done(new PayloadTooLargeError(`upload exceeds the limit of ${this.maxBytes} bytes (LAMINA_MAX_UPLOAD_BYTES)`));
    this.hash.update(chunk);
    done(null, chunk);
  }
}

async function streamToFile(source: Readable, path: string, maxBytes: number): Promise<{ size: number; sha256: string }> {
  const limiter = new HashingLimiter(maxBytes);
  // highWaterMark: 1 MiB writes keep syscalls few on multi-gigabyte uploads; memory stays bounded
  // because pipeline applies backpressure to the socket.
  await pipeline(source, limiter, createWriteStream(path, { highWaterMark: 1 << 20 }));
  return { size: limiter.size, sha256: limiter.hash.digest('hex') };
}

/**
 * Streams a request body to `path`: a raw body (any content type but multipart; name from
 * `?filename=`) or multipart/form-data with one field `file` (parsed by busboy). The body never
 * sits in memory; SHA-256 is computed while streaming. On any failure the partial file is removed.
 * @throws PayloadTooLargeError (413) past `maxBytes`; InvalidParameterError (400) for a bad name or
 *   a multipart body without `file`.
 */
export async function receiveUpload(req: IncomingMessage, query: { filename?: unknown }, path: string, maxBytes: number): Promise<ReceivedFile> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes + 64 * 1024) {
    throw new PayloadTooLargeError(`upload of ${declared} bytes exceeds the limit of ${maxBytes} bytes (LAMINA_MAX_UPLOAD_BYTES)`);
  }
  try {
    if (/^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) return await receiveMultipart(req, path, maxBytes);
    const filename = safeFileName(query.filename);
    return { path, filename, ...(await streamToFile(req, path, maxBytes)) };
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}

function receiveMultipart(req: IncomingMessage, path: string, maxBytes: number): Promise<ReceivedFile> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      // preservePath: see the client's name as sent, so a traversal attempt is refused rather than silently trimmed
      bb = busboy({ headers: req.headers, preservePath: true, limits: { files: 1, fileSize: maxBytes, fields: 16, parts: 20 } });
    } catch (err) {
      reject(new InvalidParameterError(`bad multipart body: ${(err as Error).message}`, { cause: err }));
      return;
    }
    let pending: Promise<ReceivedFile> | null = null;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      req.resume();
      reject(err);
    };
    bb.on('file', (field, stream, info) => {
      if (field !== 'file' || pending) {
        stream.resume();
        return;
      }
      let filename: string;
      try {
        filename = safeFileName(info.filename);
      } catch (err) {
        stream.resume();
        fail(err);
        return;
      }
      // busboy truncates at fileSize and emits 'limit'; the limiter turns any excess into a 413.
      stream.on('limit', () => stream.destroy(new PayloadTooLargeError(`upload exceeds the limit of ${maxBytes} bytes (LAMINA_MAX_UPLOAD_BYTES)`)));
      pending = streamToFile(stream, path, maxBytes).then((r) => ({ path, filename, ...r }));
      pending.catch(fail);
    });
    bb.on('error', (err) => fail(new InvalidParameterError(`bad multipart body: ${(err as Error).message}`, { cause: err })));
    bb.on('close', () => {
      if (failed) return;
      if (!pending) return fail(new InvalidParameterError("multipart body has no file field named 'file'"));
      pending.then(resolve, fail);
    });
    req.pipe(bb);
  });
}
