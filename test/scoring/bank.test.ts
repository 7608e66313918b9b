import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBankMatchesModel, readBank, writeBank, type BankHeader } from '../../src/scoring/bank.ts';
import { UnprocessableError } from '../../src/errors.ts';

const header = (count: number, dim: number): BankHeader => ({
  format: 'lamina-reference-bank', version: 1, model: { name: 'm', trained: false }, embeddingSize: dim, count, metric: 'l2', k: 1,
  calibration: { center: 1, spread: 0.5, z: 3 }, sources: [{ name: 'a.svs', sha256: '0'.repeat(64), tiles: 10 }], totalEmbeddings: 10, parameters: {},
});

test('bank round trip, and clear errors for another embedding size, another model, truncation and non-banks', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-bank-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'bank.lmb');
  const data = Float32Array.from({ length: 12 }, (_, i) => i / 3);
  await writeBank(path, header(3, 4), data);
  const bank = await readBank(path);
  assert.equal(bank.dim, 4);
  assert.equal(bank.count, 3);
  assert.deepEqual([...bank.data], [...data]);
  assert.doesNotThrow(() => checkBankMatchesModel(bank, 'bank.lmb', { name: 'm', embeddingSize: 4 }));
  assert.throws(() => checkBankMatchesModel(bank, 'bank.lmb', { name: 'm', embeddingSize: 384 }), (e: unknown) =>
    e instanceof UnprocessableError && e.message === "reference bank bank.lmb holds embeddings of size 4 (model 'm'), but model 'm' gives embeddings of size 384; fit the bank with the same model");
  assert.throws(() => checkBankMatchesModel(bank, 'bank.lmb', { name: 'other', embeddingSize: 4 }), /was fitted with model 'm', not 'other'/);

  await truncate(path, 12 + 100);
  await assert.rejects(readBank(path), (e: unknown) => e instanceof UnprocessableError && /bank\.lmb: bank (is \d+ bytes, header implies|header)/.test(e.message));
  const junk = join(dir, 'junk.lmb');
  await writeFile(junk, 'hello world, not a bank');
  await assert.rejects(readBank(junk), /junk\.lmb is not a Lamina reference bank/);
});
