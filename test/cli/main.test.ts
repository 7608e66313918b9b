import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const lamina = (args: string[]) => spawnSync(process.execPath, ['bin/lamina.js', ...args], { encoding: 'utf8' });

test('unknown command exits 2 with a message naming it', () => {
  const r = lamina(['frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});

test('--help lists commands and exits 0', () => {
  const r = lamina(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: lamina <command>/);
});
