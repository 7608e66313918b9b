import { inflate } from 'node:zlib';
import { promisify } from 'node:util';
import { CorruptSlideError } from '../errors.ts';
import type { Codec } from './types.ts';
import { checkSampleLayout, expectedSampleBytes, samplesToRgb } from './samples-to-rgb.ts';

const inflateAsync = promisify(inflate);

/** TIFF compression 8 / 32946 (Adobe / old deflate), zlib-wrapped; runs on libuv's pool. */
export const deflate: Codec = {
  name: 'deflate',
  async decode(data, ctx) {
    checkSampleLayout(ctx);
    const expected = expectedSampleBytes(ctx);
    let samples: Buffer;
    try {
      // the bound stops a zip bomb: a block never needs more than its own samples
      samples = await inflateAsync(data, { maxOutputLength: Math.max(1, expected), finishFlush: 2 /* Z_SYNC_FLUSH: tolerate a missing end */ });
    } catch (err) {
      throw new CorruptSlideError(`${ctx.name}: deflate data is corrupt: ${(err as Error).message}`, { cause: err });
    }
    return samplesToRgb(samples, ctx);
  },
};
