import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analysisDefaults, anomalyPipeline, parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { InvalidParameterError } from '../../src/errors.ts';
import { paramsFromFlags } from '../../src/cli/analysis-flags.ts';

test('defaults come from the one defaults object', () => {
  const p = parseAnalysisParams({});
  assert.equal(p.tileSize, 224);
  assert.equal(p.batchSize, analysisDefaults.batchSize);
  assert.equal(p.model, 'lamina-vit-tiny-dino', 'the trained default (issue 9)');
  assert.equal(p.reference, null);
  assert.deepEqual(Object.keys(p).sort(), Object.keys(analysisDefaults).sort());
  assert.deepEqual(JSON.parse(JSON.stringify(p)), p, 'JSON round trip (job data)');
});

test('one wording for bad values, unknown keys and conflicting resolutions', () => {
  assert.throws(() => parseAnalysisParams({ tileSize: 1.5 }), (e: unknown) =>
    e instanceof InvalidParameterError && e.message === 'Expected integer between 16 and 4096 for tileSize but received 1.5 of type number');
  assert.throws(() => parseAnalysisParams({ engine: 'tpu' }), /Expected one of 'cpu', 'webgpu', 'cuda' for engine but received "tpu" of type string/);
  assert.throws(() => parseAnalysisParams({ tilesize: 256 }), /Unknown analysis parameter 'tilesize'/);
  assert.throws(() => parseAnalysisParams({ mpp: 0.5, level: 1 }), /Give at most one of level, mpp and magnification \(got level and mpp\)/);
  assert.throws(() => parseAnalysisParams('x'), /Expected object for parameters/);
});

test('CLI flags map onto the same schema', () => {
  const p = paramsFromFlags({ 'tile-size': '256', mpp: '0.5', model: 'untrained-test-tiny' });
  assert.equal(p.tileSize, 256);
  assert.equal(p.mpp, 0.5);
  assert.throws(() => paramsFromFlags({ 'min-tissue': 'lots' }), /Expected number between 0 and 1 for minTissue but received "lots" of type string/);
});

test('the declared steps name the functions a queue runs', () => {
  assert.deepEqual(anomalyPipeline.steps.map((s) => `${s.name}:${s.scope}:${s.run}`), [
    'tissue:slide:planAnalysis', 'plan:slide:planAnalysis', 'encode:batch:processBatch', 'score:batch:processBatch', 'aggregate:slide:finishAnalysis',
  ]);
});
