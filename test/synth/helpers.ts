/** Shared helpers for the synth tests: temp folders, hashes, and OpenSlide (python3-openslide) as a peer reader. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-synth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The Debian python that has python3-openslide (a pyenv python earlier on PATH may not). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** True when `import openslide` works. */
export const hasOpenSlide = spawnSync(PYTHON, ['-c', 'import openslide'], { encoding: 'utf8' }).status === 0;

/** Runs a python snippet with `openslide` imported and `path` bound; returns its stdout parsed as JSON. */
export function openslideJson(path: string, body: string): any {
  const code = `import json, sys, openslide\npath = sys.argv[1]\n${body}`;
  const r = spawnSync(PYTHON, ['-c', code, path], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`openslide failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
