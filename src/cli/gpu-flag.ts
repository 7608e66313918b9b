/**
 * `--gpu N` for the commands that open the WebGPU engine (`analyze`, `worker`). The choice travels
 * as LAMINA_GPU, which `GpuContext.create` reads and which sandboxed batch children inherit, so
 * every device the process opens is on that adapter. The index is checked against Dawn's adapter
 * list here, at the door: the engine would otherwise fall back to the CPU with only a warning.
 */
import { numberFlag } from './args.ts';
import { listAdapters } from '../../kernels/gpu/gpu-context.ts';
import { checkAdapterIndex } from '../../kernels/gpu/adapter-details.ts';
import { invalidParameter } from '../errors.ts';

/**
 * Applies `--gpu` (else an already set LAMINA_GPU): validates it, sets LAMINA_GPU and returns the
 * index; undefined when neither is given (Dawn's default high-performance adapter).
 */
export async function applyGpuFlag(raw: string | undefined): Promise<number | undefined> {
  let index: number | undefined;
  if (raw !== undefined) index = numberFlag('gpu', raw, undefined, 0, 1023);
  else if (process.env.LAMINA_GPU !== undefined && process.env.LAMINA_GPU !== '') {
    const env = process.env.LAMINA_GPU;
    index = Number(env);
    if (!Number.isInteger(index) || index < 0) throw invalidParameter('LAMINA_GPU', 'non-negative integer', env);
  }
  if (index === undefined) return undefined;
  checkAdapterIndex(index, await listAdapters());
  process.env.LAMINA_GPU = String(index);
  return index;
}
