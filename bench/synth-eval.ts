/**
 * Scores an analysis result folder against a synthetic slide's true anomalies (its
 * `.anomalies.json` sidecar from `lamina synth`): patch-level AUROC and AUPRO, overall and per
 * anomaly kind. A tile is anomalous when at least half of it lies inside an anomaly and normal when
 * none of it does; tiles in between (region borders) are left out of the counts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { anomalyCoverage, type Anomaly } from '../src/synth/index.ts';
import { aupro, auroc } from '../src/scoring/metrics.ts';

/** One tiles.csv row. */
export interface TileRow { col: number; row: number; x: number; y: number; width: number; height: number; score: number }

/** Parses tiles.csv. */
export async function readTilesCsv(resultDir: string): Promise<TileRow[]> {
  const text = await readFile(join(resultDir, 'tiles.csv'), 'utf8');
  const [header, ...lines] = text.trim().split('\n');
  const names = header!.split(',');
  const at = (n: string) => names.indexOf(n);
  return lines.map((line) => {
    const f = line.split(',');
    return { col: +f[at('col')]!, row: +f[at('row')]!, x: +f[at('x')]!, y: +f[at('y')]!, width: +f[at('width')]!, height: +f[at('height')]!, score: +f[at('raw_score')]! };
  });
}

/** Metrics of one evaluation. */
export interface SynthEvaluation {
  auroc: number;
  aupro: number;
  positives: number;
  negatives: number;
  excluded: number;
  /** AUROC of each kind's tiles against all normal tiles. */
  byKind: Record<string, { auroc: number; positives: number }>;
}

/**
 * Evaluates `resultDir` against `sidecarPath`.
 * @example const e = await evaluateSynth('out', 'slide.anomalies.json'); e.auroc
 */
export async function evaluateSynth(resultDir: string, sidecarPath: string): Promise<SynthEvaluation> {
  const sidecar = JSON.parse(await readFile(sidecarPath, 'utf8')) as { anomalies: Anomaly[] };
  const tiles = await readTilesCsv(resultDir);
  const scores: number[] = [];
  const labels: number[] = [];
  const kinds: string[] = [];
  let excluded = 0;
  const cols = Math.max(...tiles.map((t) => t.col)) + 1;
  const rows = Math.max(...tiles.map((t) => t.row)) + 1;
  const gridScores = new Float64Array(cols * rows);
  const gridTruth = new Uint8Array(cols * rows);
  const gridValid = new Uint8Array(cols * rows);
  for (const t of tiles) {
    const coverage = anomalyCoverage(sidecar.anomalies, t.x, t.y, t.width, t.height, 8);
    if (coverage > 0 && coverage < 0.5) { excluded++; continue; }
    const label = coverage >= 0.5 ? 1 : 0;
    scores.push(t.score);
    labels.push(label);
    const kind = label ? (sidecar.anomalies.find((a) => anomalyCoverage([a], t.x, t.y, t.width, t.height, 8) >= 0.25)?.kind ?? 'mixed') : '';
    kinds.push(kind);
    const i = t.row * cols + t.col;
    gridScores[i] = t.score; gridTruth[i] = label; gridValid[i] = 1;
  }
  const byKind: SynthEvaluation['byKind'] = {};
  for (const kind of new Set(kinds.filter(Boolean))) {
    const idx = kinds.map((k, i) => (k === kind || k === '' ? i : -1)).filter((i) => i >= 0);
    byKind[kind] = { auroc: auroc(idx.map((i) => scores[i]!), idx.map((i) => labels[i]!)), positives: idx.filter((i) => labels[i]).length };
  }
  const positives = labels.filter(Boolean).length;
  return {
    auroc: auroc(scores, labels),
    aupro: aupro(gridScores, gridTruth, gridValid, cols, rows),
    positives,
    negatives: labels.length - positives,
    excluded,
    byKind,
  };
}
