import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aupro, auroc } from '../../src/scoring/metrics.ts';
import { mulberry32 } from '../../src/util/prng.ts';

test('AUROC: perfect, inverted, all tied, one class', () => {
  assert.equal(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assert.equal(auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
  assert.equal(auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  assert.ok(Number.isNaN(auroc([1, 2], [1, 1])));
});

test('AUROC equals the pairwise probability (ties count one half) on random data', () => {
  const random = mulberry32(42);
  const scores = Array.from({ length: 300 }, () => Math.round(random() * 20) / 20); // many ties
  const labels = Array.from({ length: 300 }, () => (random() < 0.3 ? 1 : 0));
  let wins = 0, pairs = 0;
  for (let i = 0; i < 300; i++) {
    for (let j = 0; j < 300; j++) {
      if (labels[i] !== 1 || labels[j] !== 0) continue;
      pairs++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  assert.ok(Math.abs(auroc(scores, labels) - wins / pairs) < 1e-12);
});

test('AUPRO weighs regions equally and integrates to maxFpr', () => {
  // 10×10 grid; region A = 4 cells, region B = 1 cell; everything valid.
  const w = 10, h = 10;
  const truth = new Uint8Array(100);
  for (const i of [11, 12, 21, 22, 77]) truth[i] = 1;
  const valid = new Uint8Array(100).fill(1);
  const perfect = Float64Array.from(truth, (t) => (t ? 1 : 0));
  assert.equal(aupro(perfect, truth, valid, w, h), 1);
  // Region A found first, region B scored below every normal cell: PRO stays 0.5 up to FPR 1.
  const halfFound = Float64Array.from(perfect, (v) => (v ? 1 : 0.1));
  halfFound[77] = 0;
  assert.ok(Math.abs(aupro(halfFound, truth, valid, w, h) - 0.5) < 1e-9);
  // Inverted scores: nothing is found before FPR reaches 1 → 0 up to 0.3.
  assert.equal(aupro(Float64Array.from(perfect, (v) => 1 - v), truth, valid, w, h), 0);
});
