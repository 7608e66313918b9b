import { extname } from 'node:path';
import sharp from 'sharp';
import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { InvalidParameterError, invalidParameter } from '../../errors.ts';
import { openSlide } from '../../readers/registry.ts';
import { MAX_REGION_SIDE } from '../../readers/region-request.ts';

const usage = 'lamina region <slide> --x X --y Y --level L --width W --height H --out file.png|.jpg';

export const command: Command = {
  summary: 'Read one region of a slide (x, y in level-0 pixels; width, height at the level) to PNG or JPEG',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {
      x: { type: 'string' }, y: { type: 'string' }, level: { type: 'string' },
      width: { type: 'string' }, height: { type: 'string' }, out: { type: 'string' },
    }, usage);
    if (positionals.length !== 1) throw new InvalidParameterError(`Expected one slide path\nUsage: ${usage}`);
    const x = numberFlag('x', values.x, 0, -(2 ** 40), 2 ** 40);
    const y = numberFlag('y', values.y, 0, -(2 ** 40), 2 ** 40);
    const level = numberFlag('level', values.level, 0, 0, 1000);
    const width = numberFlag('width', values.width, undefined, 1, MAX_REGION_SIDE);
    const height = numberFlag('height', values.height, undefined, 1, MAX_REGION_SIDE);
    const out = values.out;
    if (!out) throw new InvalidParameterError(`Missing required option --out\nUsage: ${usage}`);
    const ext = extname(out).toLowerCase();
    if (!['.png', '.jpg', '.jpeg'].includes(ext)) throw invalidParameter('--out', 'a file name ending in .png, .jpg or .jpeg', out);
    const slide = await openSlide(positionals[0]!);
    try {
      if (level >= slide.levels.length) throw invalidParameter('--level', `integer between 0 and ${slide.levels.length - 1}`, String(level));
      const img = await slide.readRegion(x, y, level, width, height);
      const pipeline = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 }, limitInputPixels: false });
      await (ext === '.png' ? pipeline.png() : pipeline.jpeg({ quality: 90 })).toFile(out);
      console.log(`${out}: ${width} × ${height} at level ${level} from (${x}, ${y})`);
      return 0;
    } finally {
      await slide.close();
    }
  },
};
