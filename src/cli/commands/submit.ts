import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from '../main.ts';
import { parseFlags } from '../args.ts';
import { InvalidParameterError, LaminaError } from '../../errors.ts';

const usage = 'lamina submit <folder|files…> [--server URL] [--params JSON] [--model name] [--tile-size N] [--batch-size N] [--wait]';

/** Slide files of a folder (not recursive, hidden files skipped), or the files given. */
export async function slideFiles(inputs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const s = await stat(input);
    if (s.isDirectory()) {
      for (const name of (await readdir(input)).sort()) {
        if (name.startsWith('.')) continue;
        const p = join(input, name);
        if ((await stat(p)).isFile()) files.push(p);
      }
    } else {
      files.push(input);
    }
  }
  return files;
}

interface BatchSummary {
  id: string;
  done: boolean;
  fraction: number;
  counts: Record<string, number>;
  items: { slideId: string; name?: string; state: string; score: number | null; reason: string | null }[];
}

/** The summary table: slide, state, score, reason. */
export function formatSummary(s: BatchSummary, rejected: { name: string; reason: string }[]): string {
  const rows = [
    ...s.items.map((it) => [it.name ?? it.slideId, it.state, it.score === null ? '' : it.score.toFixed(3), it.reason ?? '']),
    ...rejected.map((r) => [r.name, 'rejected', '', r.reason]),
  ];
  const w = [5, 5, 5].map((min, i) => Math.max(min, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padStart(w[2]!)}  ${r[3]}`;
  return [line(['slide', 'state', 'score', 'reason']), ...rows.map(line)].join('\n');
}

export const command: Command = {
  summary: 'Upload slides (a folder or files) to a Lamina server and queue them as one batch',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {
      server: { type: 'string' }, params: { type: 'string' }, model: { type: 'string' },
      'tile-size': { type: 'string' }, 'batch-size': { type: 'string' }, wait: { type: 'boolean' },
    }, usage);
    if (positionals.length === 0) throw new InvalidParameterError(`Give a folder or slide files.\nUsage: ${usage}`);
    const server = ((values.server as string | undefined) ?? process.env.LAMINA_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
    let params: Record<string, unknown> = {};
    if (values.params) {
      try { params = JSON.parse(values.params as string); } catch (err) { throw new InvalidParameterError(`--params is not JSON: ${(err as Error).message}`); }
    }
    if (values.model) params.model = values.model;
    if (values['tile-size']) params.tileSize = Number(values['tile-size']);
    if (values['batch-size']) params.batchSize = Number(values['batch-size']);
    const headers: Record<string, string> = process.env.LAMINA_API_TOKEN ? { authorization: `Bearer ${process.env.LAMINA_API_TOKEN}` } : {};
    const call = async (path: string, init: RequestInit = {}) => {
      const r = await fetch(`${server}${path}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw Object.assign(new LaminaError('http', `${r.status} ${body?.error?.message ?? r.statusText}`), { httpStatus: r.status });
      return body;
    };

    const files = await slideFiles(positionals);
    const slides: string[] = [];
    const rejected: { name: string; reason: string }[] = [];
    for (const file of files) {
      const name = basename(file);
      try {
        // Streamed: a multi-gigabyte slide is never held in memory.
        const body = Readable.toWeb(createReadStream(file)) as ReadableStream;
        const r = await call(`/api/slides?filename=${encodeURIComponent(name)}`, {
          method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }, duplex: 'half',
        } as RequestInit);
        slides.push(r.slide.id);
        console.log(`${name}: ${r.duplicate ? 'already stored' : 'uploaded'} as ${r.slide.id}`);
      } catch (err) {
        // One bad slide fails alone, with its reason; the others go on.
        if (!(err instanceof LaminaError)) throw err;
        rejected.push({ name, reason: err.message });
        console.log(`${name}: rejected: ${err.message}`);
      }
    }
    if (slides.length === 0) {
      console.log(formatSummary({ id: '', done: true, fraction: 1, counts: {}, items: [] }, rejected));
      return 1;
    }
    let summary: BatchSummary = await call('/api/batches', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ slides, params }),
    });
    console.log(`batch ${summary.id}: ${slides.length} slide(s) queued; follow at ${server}/api/batches/${summary.id}`);
    while (values.wait && !summary.done) {
      await new Promise((r) => setTimeout(r, 2000));
      summary = await call(`/api/batches/${summary.id}`);
      process.stderr.write(`\r${(summary.fraction * 100).toFixed(0)}% ${JSON.stringify(summary.counts)}   `);
    }
    if (values.wait) process.stderr.write('\n');
    console.log(formatSummary(summary, rejected));
    const failed = rejected.length + summary.items.filter((i) => i.state === 'failed').length;
    return failed > 0 ? 1 : 0;
  },
};
