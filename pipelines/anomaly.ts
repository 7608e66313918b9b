/**
 * The anomaly analysis: its declared steps and ONE parameter schema with every default in one
 * object. The CLI parses its flags through `parseAnalysisParams`, the HTTP API parses request
 * bodies through it, and a worker parses `job.data.params` through it — one set of messages.
 *
 * Steps (see src/pipeline/): `tissue` and `plan` run once per slide (`planAnalysis`); `encode` and
 * `score` run per batch of tiles (`processBatch`, what a queue's child job does); `aggregate`
 * runs once at the end (`finishAnalysis`: in-slide scorer fit when no reference bank is given,
 * calibration, heatmap, regions, tiles.csv, result.json).
 */
import { z } from 'zod';
import { invalidParameter, InvalidParameterError } from '../src/errors.ts';
import { DEFAULT_MODEL_NAME } from '../src/encoder/builtin-models.ts';

/** Every default of an analysis, in one place (sharp's `this.options`). */
export const analysisDefaults = {
  /** Tile edge in pixels at the analysis resolution (what the encoder sees before its own resize). */
  tileSize: 224,
  /** Step between tiles in analysis pixels; null = tileSize (no overlap). */
  stride: null as number | null,
  /** Pyramid level to analyse at; null with mpp and magnification null = level 0 (native). */
  level: null as number | null,
  /** Analysis resolution in µm per pixel (needs the slide's mpp). */
  mpp: null as number | null,
  /** Analysis magnification, e.g. 20 (needs the slide's objective power). */
  magnification: null as number | null,
  /**
   * Native-resolution regions (issue 7): null = encode tiles of tileSize; an edge in pixels (a
   * multiple of the model's patch size, e.g. 1024 or 2048) = encode each region as ONE long patch
   * sequence through flash attention and score its patch tokens, so the heatmap has one cell per
   * model patch (16 px) instead of one per tile.
   */
  regionSize: null as number | null,
  /** Minimum tissue fraction for a tile to be encoded. */
  minTissue: 0.5,
  /** Longest side of the tissue mask grid, in mask pixels. */
  tissueMaskMaxSide: 2048,
  /** Tiles per encoder call (and per queue child job). */
  batchSize: 32,
  /**
   * Encoder: a model name (a folder under models/, or a built-in) or a path to an .onnx file with
   * its manifest beside it. Default: DEFAULT_MODEL_NAME, the trained DINO ViT-Tiny/16
   * 'lamina-vit-tiny-dino' shipped in models/ (issue 9); the UNTRAINED built-ins
   * ('untrained-vit-s16', 'untrained-test-tiny', …) stay selectable by name.
   */
  model: DEFAULT_MODEL_NAME,
  /** ONNX Runtime execution provider. */
  engine: 'cpu' as 'cpu' | 'webgpu' | 'cuda',
  /** Reference bank file from `lamina fit-reference`; null = in-slide scoring. */
  reference: null as string | null,
  /**
   * 'auto' = 'knn' with a reference bank; without one 'mahalanobis-tokens' when the encoder gives
   * patch tokens, else 'mahalanobis'. 'mahalanobis' (in-slide or on the bank): robust Ledoit-Wolf
   * Mahalanobis of pooled tile embeddings. 'mahalanobis-tokens' (in-slide only): that score joined
   * with a two-sided token statistic (each tile's most distant patch tokens under a robust Gaussian
   * of the slide's own tokens) — in-slide AUROC 0.883→0.975 and 0.911→0.964 with the trained
   * default (seeds 5 and 7; docs/benchmarks.md, issue 3/9 section).
   */
  scorer: 'auto' as 'auto' | 'knn' | 'mahalanobis' | 'mahalanobis-tokens',
  /**
   * Neighbours averaged by the kNN scorer. 3 rather than 1: with the trained default encoder and a
   * reference bank, AUROC 0.866→0.902 and 0.938→0.949 (seeds 5 and 7, every anomaly kind equal or
   * better; docs/benchmarks.md, issue 3/9 section).
   */
  k: 3,
  /** Embeddings kept from the slide to fit the in-slide scorer (deterministic, evenly spread). */
  maxFitSamples: 8192,
  /** Fraction of reference embeddings kept by greedy coreset subsampling (fit-reference). */
  coresetRatio: 0.1,
  /** Upper bound on the coreset size (fit-reference). */
  coresetMax: 8192,
  /**
   * What fit-reference stores: 'tiles' (pooled tile embeddings) or 'tokens' (patch tokens; a tile
   * then scores as its worst token — PatchCore proper; needs a model with a tokens output); 'auto'
   * = tokens when the model has them. Tokens: AUROC 0.902→0.985 (seed 5) and 0.949→0.96x (seed 7)
   * with the trained default (docs/benchmarks.md, issue 3/9 section).
   */
  bankEntries: 'auto' as 'auto' | 'tiles' | 'tokens',
  /** Calibrated score at or above which a tile belongs to an anomalous region. */
  threshold: 0.5,
  /** Robust z-score (median + z·1.4826·MAD of the reference/slide scores) that calibrates to 0.5. */
  calibrationZ: 3,
  /** Regions smaller than this many tiles are dropped. */
  minRegionTiles: 2,
  /** Tiles listed in result.json's topTiles. */
  topTiles: 20,
  /** Seed for coreset starts and any sampling. */
  seed: 0,
};

const nullableInt = (min: number, max: number) => z.number().int().min(min).max(max).nullable();
const nullablePositive = () => z.number().positive().finite().nullable();

/** The schema; every field optional on input, filled from `analysisDefaults`. */
export const analysisParamsSchema = z.strictObject({
  tileSize: z.number().int().min(16).max(4096).default(analysisDefaults.tileSize),
  stride: nullableInt(1, 4096).default(analysisDefaults.stride),
  level: nullableInt(0, 64).default(analysisDefaults.level),
  mpp: nullablePositive().default(analysisDefaults.mpp),
  magnification: nullablePositive().default(analysisDefaults.magnification),
  regionSize: nullableInt(64, 8192).default(analysisDefaults.regionSize),
  minTissue: z.number().min(0).max(1).default(analysisDefaults.minTissue),
  tissueMaskMaxSide: z.number().int().min(64).max(8192).default(analysisDefaults.tissueMaskMaxSide),
  batchSize: z.number().int().min(1).max(1024).default(analysisDefaults.batchSize),
  model: z.string().min(1).default(analysisDefaults.model),
  engine: z.enum(['cpu', 'webgpu', 'cuda']).default(analysisDefaults.engine),
  reference: z.string().min(1).nullable().default(analysisDefaults.reference),
  scorer: z.enum(['auto', 'knn', 'mahalanobis', 'mahalanobis-tokens']).default(analysisDefaults.scorer),
  k: z.number().int().min(1).max(64).default(analysisDefaults.k),
  maxFitSamples: z.number().int().min(16).max(1_000_000).default(analysisDefaults.maxFitSamples),
  coresetRatio: z.number().gt(0).max(1).default(analysisDefaults.coresetRatio),
  coresetMax: z.number().int().min(1).max(1_000_000).default(analysisDefaults.coresetMax),
  bankEntries: z.enum(['auto', 'tiles', 'tokens']).default(analysisDefaults.bankEntries),
  threshold: z.number().min(0).max(1).default(analysisDefaults.threshold),
  calibrationZ: z.number().positive().max(100).default(analysisDefaults.calibrationZ),
  minRegionTiles: z.number().int().min(1).max(1_000_000).default(analysisDefaults.minRegionTiles),
  topTiles: z.number().int().min(0).max(10_000).default(analysisDefaults.topTiles),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(analysisDefaults.seed),
});

/** Parameters of one analysis, all fields filled. JSON-serialisable (it travels in job data). */
export type AnalysisParams = z.output<typeof analysisParamsSchema>;
/** What callers may pass: any subset of the fields. */
export type AnalysisParamsInput = z.input<typeof analysisParamsSchema>;

/** What each field accepts, in the words of `invalidParameter` messages. */
const expectedText: Record<string, string> = {
  tileSize: 'integer between 16 and 4096',
  stride: 'integer between 1 and 4096 or null',
  level: 'integer between 0 and 64 or null',
  mpp: 'positive number or null',
  magnification: 'positive number or null',
  regionSize: 'integer between 64 and 8192 or null',
  minTissue: 'number between 0 and 1',
  tissueMaskMaxSide: 'integer between 64 and 8192',
  batchSize: 'integer between 1 and 1024',
  model: 'non-empty string',
  engine: "one of 'cpu', 'webgpu', 'cuda'",
  reference: 'non-empty string (a bank file) or null',
  scorer: "one of 'auto', 'knn', 'mahalanobis', 'mahalanobis-tokens'",
  k: 'integer between 1 and 64',
  maxFitSamples: 'integer between 16 and 1000000',
  coresetRatio: 'number in (0, 1]',
  coresetMax: 'integer between 1 and 1000000',
  bankEntries: "one of 'auto', 'tiles', 'tokens'",
  threshold: 'number between 0 and 1',
  calibrationZ: 'positive number up to 100',
  minRegionTiles: 'integer between 1 and 1000000',
  topTiles: 'integer between 0 and 10000',
  seed: 'integer between 0 and 2147483647',
};

/**
 * Validates and completes analysis parameters; the one entry used by the CLI, the API and workers.
 * @throws InvalidParameterError naming the first bad field, e.g.
 *   `Expected integer between 16 and 4096 for tileSize but received 1.5 of type number`
 * @example parseAnalysisParams({ tileSize: 256 }).batchSize // 32
 */
export function parseAnalysisParams(input: unknown = {}): AnalysisParams {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalidParameter('parameters', 'object', input);
  }
  const parsed = analysisParamsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      throw new InvalidParameterError(`Unknown analysis parameter ${issue.keys.map((k) => `'${k}'`).join(', ')}`);
    }
    const actual = (input as Record<string, unknown>)[String(issue.path[0])];
    throw invalidParameter(name, expectedText[name] ?? issue.message, actual);
  }
  const params = parsed.data;
  const chosen = (['level', 'mpp', 'magnification'] as const).filter((key) => params[key] !== null);
  if (chosen.length > 1) {
    throw new InvalidParameterError(`Give at most one of level, mpp and magnification (got ${chosen.join(' and ')})`);
  }
  if (params.scorer === 'mahalanobis-tokens' && (params.reference !== null || params.regionSize !== null)) {
    throw new InvalidParameterError(`scorer 'mahalanobis-tokens' is the in-slide scorer of tiles; it takes no ${params.reference !== null ? 'reference bank' : 'regionSize'}`);
  }
  return params;
}

/** One declared step of the analysis; `scope` says how often it runs. */
export interface PipelineStep {
  name: 'tissue' | 'plan' | 'encode' | 'score' | 'aggregate';
  scope: 'slide' | 'batch';
  /** The function in src/pipeline that runs it. */
  run: 'planAnalysis' | 'processBatch' | 'finishAnalysis';
  summary: string;
}

/** The steps, in order. A queue runs `slide` steps once and `batch` steps once per tile batch. */
export const anomalyPipeline: { name: 'anomaly'; steps: readonly PipelineStep[] } = {
  name: 'anomaly',
  steps: [
    { name: 'tissue', scope: 'slide', run: 'planAnalysis', summary: 'tissue mask from a low-resolution level (Otsu on saturation, OD floor, morphology)' },
    { name: 'plan', scope: 'slide', run: 'planAnalysis', summary: 'tile grid at the analysis resolution, tissue tiles only, in stored-tile block order' },
    { name: 'encode', scope: 'batch', run: 'processBatch', summary: 'read tiles (grouped by block), embed with the encoder' },
    { name: 'score', scope: 'batch', run: 'processBatch', summary: "kNN distance to the reference bank; without one, each tile's token statistic against the slide's token model (scorer mahalanobis-tokens)" },
    { name: 'aggregate', scope: 'slide', run: 'finishAnalysis', summary: 'in-slide pooled scorer (joined with the token statistics), calibration, heatmap, regions, tiles.csv, result.json' },
  ],
};
