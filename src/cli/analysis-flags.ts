/**
 * CLI flags of the analysis parameters (shared by `analyze` and `fit-reference`): each flag maps
 * to one field of pipelines/anomaly.ts, and values are checked by that schema alone.
 */
import { parseAnalysisParams, type AnalysisParams } from '../../pipelines/anomaly.ts';

type FlagSpec = { type: 'string' };

/** Flag name → parameter name and whether the value is a number. */
export const ANALYSIS_FLAGS: Record<string, { param: keyof AnalysisParams; numeric: boolean }> = {
  model: { param: 'model', numeric: false },
  engine: { param: 'engine', numeric: false },
  reference: { param: 'reference', numeric: false },
  scorer: { param: 'scorer', numeric: false },
  'tile-size': { param: 'tileSize', numeric: true },
  stride: { param: 'stride', numeric: true },
  'region-size': { param: 'regionSize', numeric: true },
  level: { param: 'level', numeric: true },
  mpp: { param: 'mpp', numeric: true },
  magnification: { param: 'magnification', numeric: true },
  'min-tissue': { param: 'minTissue', numeric: true },
  'batch-size': { param: 'batchSize', numeric: true },
  k: { param: 'k', numeric: true },
  threshold: { param: 'threshold', numeric: true },
  'min-region-tiles': { param: 'minRegionTiles', numeric: true },
  'coreset-ratio': { param: 'coresetRatio', numeric: true },
  'bank-entries': { param: 'bankEntries', numeric: false },
  seed: { param: 'seed', numeric: true },
};

/** parseArgs option specs for the analysis flags. */
export function analysisFlagOptions(exclude: string[] = []): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = {};
  for (const name of Object.keys(ANALYSIS_FLAGS)) if (!exclude.includes(name)) out[name] = { type: 'string' };
  return out;
}

/** Builds validated parameters from parsed flag values. */
export function paramsFromFlags(values: Record<string, unknown>): AnalysisParams {
  const raw: Record<string, unknown> = {};
  for (const [flag, { param, numeric }] of Object.entries(ANALYSIS_FLAGS)) {
    const value = values[flag];
    if (typeof value !== 'string') continue;
    // A non-numeric string stays a string so the schema's message shows what was typed.
    raw[param] = numeric && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return parseAnalysisParams(raw);
}
