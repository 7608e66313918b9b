import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.ts';

const lamina = (args: string[]) => spawnSync(process.execPath, ['bin/lamina.js', 'synth', ...args], { encoding: 'utf8' });

test('lamina synth writes the slide, mask and sidecar and reports them as JSON', (t) => {
  const dir = tempDir(t);
  const out = join(dir, 's.tiff');
  const r = lamina(['--width', '1500', '--height', '1200', '--out', out, '--anomalies', '2', '--seed', '4', '--kinds', 'dense-nuclei', '--max-anomaly-size', '200', '--mask', join(dir, 'm.png'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.path, out);
  assert.equal(result.maskPath, join(dir, 'm.png'));
  assert.equal(result.sidecarPath, join(dir, 's.anomalies.json'));
  assert.equal(result.anomalies.length, 2);
  for (const p of [out, result.maskPath, result.sidecarPath]) assert.ok(existsSync(p), p);
  assert.deepEqual(JSON.parse(readFileSync(result.sidecarPath, 'utf8')).anomalies, result.anomalies);
});

test('bad arguments exit 2 with a clear message and write nothing', (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'bad.tiff');
  const cases: Array<[string[], RegExp]> = [
    [['--width', '1000', '--height', '1000'], /Missing required option --out/],
    [['--height', '1000', '--out', out], /Missing required option --width/],
    [['--width', 'abc', '--height', '1000', '--out', out], /Expected integer between 64 and 1000000 for --width but received "abc"/],
    [['--width', '1000', '--height', '1000', '--out', out, '--tile-size', '300'], /Expected 256 or 512 for tileSize but received 300/],
    [['--width', '1000', '--height', '1000', '--out', out, '--kinds', 'dense-nuclei,blue'], /for kinds but received "blue"/],
    [['--width', '1000', '--height', '1000', '--out', out, '--background', 'paper'], /Expected "procedural" or "real" for --background but received "paper"/],
    [['--width', '1000', '--height', '1000', '--out', out, '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--width', '1000', '--height', '1000', '--out', out, 'extra'], /Unexpected argument "extra"/],
  ];
  for (const [args, message] of cases) {
    const r = lamina(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^lamina: /);
  }
  assert.equal(existsSync(out), false);
});

test('an impossible placement exits 1 naming the problem', (t) => {
  const out = join(tempDir(t), 'x.tiff');
  const r = lamina(['--width', '800', '--height', '800', '--out', out, '--anomalies', '300', '--kinds', 'dense-nuclei', '--min-anomaly-size', '100', '--max-anomaly-size', '120']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /Could not place anomaly/);
});
