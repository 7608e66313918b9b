import type { Codec } from './types.ts';
import { checkSampleLayout, samplesToRgb } from './samples-to-rgb.ts';

/** TIFF compression 1: samples stored as they are. */
export const none: Codec = {
  name: 'none',
  async decode(data, ctx) {
    checkSampleLayout(ctx);
    // copy: the predictor and RGB conversion write in place, and `data` may be a view of a shared buffer
    return samplesToRgb(Buffer.from(data), ctx);
  },
};
