import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { cliContext, withInterrupt } from '../analyze-progress.ts';
import { summarise } from './analyze.ts';
import { modelLine, untrainedNotice } from '../embedder-run.ts';
import { parseAnalysisParams } from '../../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../pipeline/analyze.ts';
import { openEmbedder } from '../../pipeline/open-embedder.ts';
import type { AnalysisResult } from '../../pipeline/result.ts';
import { DEFAULT_MODEL_NAME } from '../../encoder/builtin-models.ts';

const usage = `lamina demo [--port N] [--model name|path (default: ${DEFAULT_MODEL_NAME})] [--exit-when-done] | lamina demo --local [--out dir] [--model name|path]`;

/** The real sample slide, resolved from the repository root (../shared/slides). */
export const DEMO_SLIDE = resolve(fileURLToPath(new URL('../../../', import.meta.url)), '../shared/slides/CMU-1-Small-Region.svs');

/**
 * Step one of the demo: analyse the sample slide in this process. Returns the result and its
 * folder; the service demo builds on this (start Redis, API and a worker, upload, print the URL).
 */
export async function runDemoAnalysis(options: { outDir?: string; model?: string; signal?: AbortSignal } = {}): Promise<{ result: AnalysisResult; outDir: string }> {
  const outDir = resolve(options.outDir ?? join('out', 'demo'));
  const params = parseAnalysisParams(options.model ? { model: options.model } : {});
  const embedder = await openEmbedder(params.model, params.engine);
  const ctx = cliContext(options.signal ?? new AbortController().signal);
  try {
    const notice = untrainedNotice(embedder);
    if (notice) process.stderr.write(`${notice}\n`);
    ctx.log.info(`demo: analysing ${DEMO_SLIDE} with encoder ${embedder.model.name}`);
    const result = await analyzeSlide(DEMO_SLIDE, params, ctx, { outDir, embedder });
    ctx.finish();
    return { result, outDir };
  } finally {
    await embedder.close();
  }
}

export const command: Command = {
  summary: 'The whole service on one machine: Redis, API and a worker; uploads and analyses the sample slide, prints the viewer URL (--local: analyse in this process only)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      out: { type: 'string' }, model: { type: 'string' }, local: { type: 'boolean' }, port: { type: 'string' }, 'exit-when-done': { type: 'boolean' },
    }, usage);
    if (!values.local) {
      const { runServiceDemo } = await import('../demo-service.ts');
      const port = numberFlag('port', values.port as string | undefined, Number(process.env.PORT) || 8080, 0, 65535);
      const params = values.model ? { model: values.model } : {};
      return withInterrupt((signal) => runServiceDemo({ slide: DEMO_SLIDE, port, params, exitWhenDone: Boolean(values['exit-when-done']), signal }));
    }
    return withInterrupt(async (signal) => {
      const { result, outDir } = await runDemoAnalysis({ outDir: values.out as string | undefined, model: values.model as string | undefined, signal });
      console.log(summarise(result, outDir));
      console.log(modelLine(result.model));
      return 0;
    });
  },
};
