/**
 * The frame shared by CLI commands that embed tiles (analyze, fit-reference): open the encoder,
 * say plainly when it is untrained, show progress, turn Ctrl-C into exit code 130, and always
 * close the encoder.
 */
import { CancelledError } from '../errors.ts';
import type { TileEmbedder } from '../pipeline/embedder.ts';
import type { AnalysisResult } from '../pipeline/result.ts';
import { openEmbedder } from '../pipeline/open-embedder.ts';
import { cliContext, withInterrupt } from './analyze-progress.ts';

/** The stderr notice for untrained encoders (said plainly, every run). */
export function untrainedNotice(embedder: TileEmbedder): string | null {
  if (embedder.model.trained) return null;
  return `note: encoder '${embedder.model.name}' is UNTRAINED (fixed-seed random weights): its features follow colour and coarse texture, ` +
    'not learned tissue morphology. Use a trained pathology encoder for real work (README, "Bring your own encoder").';
}

/**
 * The line printed after a result: which encoder made the scores and how far to trust it — the
 * manifest's summary for a trained model (result.json `model.note`), a short UNTRAINED mark otherwise
 * (the full notice went to stderr before the run).
 */
export function modelLine(model: AnalysisResult['model']): string {
  if (!model.trained) return `model: ${model.name} (UNTRAINED: fixed-seed random weights)`;
  return `model: ${model.name} (trained)${model.note ? ` — ${model.note}` : ''}`;
}

/** What a command body gets from {@link withEmbedder}. */
export interface EmbedderRun {
  embedder: TileEmbedder;
  /** Progress reporting and the cancel signal; the body calls `finish()` before printing results. */
  ctx: ReturnType<typeof cliContext>;
  /** The untrained-encoder notice already printed to stderr, or null for a trained encoder. */
  notice: string | null;
}

/**
 * Runs `body` with an opened embedder under Ctrl-C handling.
 * @param params Encoder name or path and engine, as parsed from the analysis flags.
 * @param cancelledMessage Printed to stderr when the run is cancelled (exit code 130).
 * @returns The body's exit code, or 130 when cancelled; other errors propagate.
 */
export function withEmbedder(
  params: { model: string; engine: 'cpu' | 'webgpu' | 'cuda' },
  cancelledMessage: string,
  body: (run: EmbedderRun) => Promise<number>,
): Promise<number> {
  return withInterrupt(async (signal) => {
    const embedder = await openEmbedder(params.model, params.engine);
    const ctx = cliContext(signal);
    try {
      const notice = untrainedNotice(embedder);
      if (notice) process.stderr.write(`${notice}\n`);
      return await body({ embedder, ctx, notice });
    } catch (err) {
      ctx.finish();
      if (err instanceof CancelledError) {
        process.stderr.write(`${cancelledMessage}\n`);
        return 130;
      }
      throw err;
    } finally {
      await embedder.close();
    }
  });
}
