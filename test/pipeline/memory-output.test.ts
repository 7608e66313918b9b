/**
 * Output text that grows with the slide (a tiles.csv row per tile) can be written from lines made
 * on demand: checked here without timing — same bytes as the whole string, and the lines are pulled
 * one chunk at a time, never all at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkLines, writeAtomic } from '../../src/pipeline/output.ts';

function* rows(n: number, counter: { made: number }): Generator<string> {
  for (let i = 0; i < n; i++) {
    counter.made++;
    yield `${i},${i % 97},${Math.floor(i / 97)},${(i * 0.37).toFixed(4)}\n`;
  }
}

test('writeAtomic(lines) writes the same bytes as the joined text, and leaves no temporary file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-output-'));
  try {
    const whole = [...rows(50_000, { made: 0 })].join('');
    await writeAtomic(dir, 'tiles.csv', rows(50_000, { made: 0 }));
    assert.equal(await readFile(join(dir, 'tiles.csv'), 'utf8'), whole);
    assert.deepEqual(await readdir(dir), ['tiles.csv']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('chunkLines pulls lines one chunk at a time', () => {
  const counter = { made: 0 };
  const chunks = chunkLines(rows(100_000, counter), 4096);
  const first = chunks.next();
  assert.equal(first.done, false);
  assert.ok(first.value.length >= 4096 && first.value.length < 4096 + 64, `first chunk ${first.value.length} chars`);
  // only the lines of the first chunk have been made so far
  assert.equal(counter.made, first.value.split('\n').length - 1);
  assert.ok(counter.made < 400);
  let total = first.value.length;
  let largest = first.value.length;
  for (const c of chunks) { total += c.length; largest = Math.max(largest, c.length); }
  assert.equal(counter.made, 100_000);
  assert.ok(largest < 4096 + 64);
  assert.equal(total, [...rows(100_000, { made: 0 })].join('').length);
  assert.deepEqual([...chunkLines([])], [], 'no lines, no chunk');
});
