import { resolve } from 'node:path';
import type { Command } from '../main.ts';
import { parseFlags } from '../args.ts';
import { analysisFlagOptions, paramsFromFlags } from '../analysis-flags.ts';
import { modelLine, withEmbedder } from '../embedder-run.ts';
import { InvalidParameterError } from '../../errors.ts';
import { analyzeSlide } from '../../pipeline/analyze.ts';
import { openSlide } from '../../readers/registry.ts';
import type { AnalysisResult } from '../../pipeline/result.ts';
import type { RegionAnalysisResult } from '../../pipeline/region-finish.ts';
import { applyGpuFlag } from '../gpu-flag.ts';
import { invalidParameter } from '../../errors.ts';
import { DEFAULT_MODEL_NAME } from '../../encoder/builtin-models.ts';

const usage =
  `lamina analyze <slide> --out <dir> [--model name|path (default: ${DEFAULT_MODEL_NAME})] [--reference bank.lmb] [--tile-size 224] [--stride N] [--region-size 1024] ` +
  '[--mpp µm | --magnification X | --level N] [--min-tissue 0.5] [--batch-size 32] [--engine cpu|webgpu|cuda] [--gpu N] ' +
  '[--scorer auto|knn|mahalanobis|mahalanobis-tokens] [--k 3] [--threshold 0.5] [--min-region-tiles 2] [--seed 0]';

/** One-paragraph summary printed at the end. */
export function summarise(result: AnalysisResult, outDir: string): string {
  const seconds = (result.timings.total ?? 0) / 1000;
  const encoding = (result as Partial<RegionAnalysisResult>).encoding;
  if (encoding) {
    return [
      `slide score ${result.slideScore.toFixed(3)} (${result.slideScoreDefinition})`,
      `${encoding.regions} regions of ${encoding.regionSize}px (${encoding.tokensPerRegion} tokens each), ${encoding.cells} cells of ${encoding.cellSize}px scored, ` +
        `${result.tiles.aboveThreshold} at or above ${result.parameters.threshold}, ${result.regions.length} region(s); scorer ${result.scorer.method}`,
      `${(encoding.regions / Math.max(1e-3, (result.timings.encode ?? 0) / 1000)).toFixed(2)} regions/s encoding; ${seconds.toFixed(1)} s in all`,
      `result: ${resolve(outDir)}/result.json (heatmap.png and scores.f32 at ${encoding.cellSize}px cells, regions.geojson, tiles.csv a row per region)`,
    ].join('\n');
  }
  return [
    `slide score ${result.slideScore.toFixed(3)} (${result.slideScoreDefinition})`,
    `${result.tiles.analysed} tiles, ${result.tiles.aboveThreshold} at or above ${result.parameters.threshold}, ${result.regions.length} region(s); scorer ${result.scorer.method}`,
    `${(result.tiles.analysed / Math.max(1e-3, (result.timings.encode ?? 0) / 1000)).toFixed(1)} tiles/s encoding; ${seconds.toFixed(1)} s in all`,
    `result: ${resolve(outDir)}/result.json (heatmap.png, scores.f32, regions.geojson, tiles.csv)`,
  ].join('\n');
}

export const command: Command = {
  summary: 'Analyse a slide: tissue, tiles, encoder, anomaly scores → heatmap, regions, result.json',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { out: { type: 'string' }, gpu: { type: 'string' }, ...analysisFlagOptions() }, usage);
    if (positionals.length !== 1) throw new InvalidParameterError(`Expected one slide path\nUsage: ${usage}`);
    if (!values.out) throw new InvalidParameterError(`Missing required option --out\nUsage: ${usage}`);
    const params = paramsFromFlags(values);
    const outDir = values.out as string;
    if (values.gpu !== undefined && params.engine !== 'webgpu') throw invalidParameter('--gpu', 'to be given with --engine webgpu', values.gpu);
    if (params.engine === 'webgpu') await applyGpuFlag(values.gpu as string | undefined);
    // Open the slide once first: a bad slide fails before the model is loaded.
    await (await openSlide(positionals[0]!)).close();
    return withEmbedder(params, `lamina: analysis cancelled; no result written to ${outDir}`, async ({ embedder, ctx }) => {
      const result = await analyzeSlide(positionals[0]!, params, ctx, { outDir, embedder });
      ctx.finish();
      console.log(summarise(result, outDir));
      console.log(modelLine(result.model));
      return 0;
    });
  },
};
