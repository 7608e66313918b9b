import type { Command } from '../main.ts';
import { parseFlags } from '../args.ts';
import { analysisFlagOptions, paramsFromFlags } from '../analysis-flags.ts';
import { withEmbedder } from '../embedder-run.ts';
import { InvalidParameterError } from '../../errors.ts';
import { fitReference } from '../../pipeline/fit-reference.ts';
import { DEFAULT_MODEL_NAME } from '../../encoder/builtin-models.ts';

const usage =
  `lamina fit-reference <slides…> --out bank.lmb [--model name|path (default: ${DEFAULT_MODEL_NAME})] [--tile-size 224] [--mpp µm | --level N] ` +
  '[--min-tissue 0.5] [--coreset-ratio 0.1] [--k 3] [--batch-size 32] [--engine cpu|webgpu|cuda] [--seed 0] [--region-size R]';

export const command: Command = {
  summary: 'Build a reference bank (coreset of normal-tissue embeddings) for kNN anomaly scoring',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { out: { type: 'string' }, ...analysisFlagOptions(['reference', 'scorer', 'threshold', 'min-region-tiles']) }, usage);
    if (positionals.length === 0) throw new InvalidParameterError(`Expected one or more slide paths\nUsage: ${usage}`);
    if (!values.out) throw new InvalidParameterError(`Missing required option --out\nUsage: ${usage}`);
    const params = paramsFromFlags(values);
    return withEmbedder(params, 'lamina: fit-reference cancelled; no bank written', async ({ embedder, ctx }) => {
      const header = await fitReference(positionals, params, ctx, embedder, values.out as string);
      ctx.finish();
      console.log(`reference bank ${values.out}: ${header.count} of ${header.totalEmbeddings} embeddings (size ${header.embeddingSize}, model ${header.model.name}) from ${header.sources.length} slide(s)`);
      return 0;
    });
  },
};
