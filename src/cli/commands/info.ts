import type { Command } from '../main.ts';
import { parseFlags } from '../args.ts';
import { InvalidParameterError } from '../../errors.ts';
import { openSlide } from '../../readers/registry.ts';
import type { Slide } from '../../readers/types.ts';

const usage = 'lamina info <slide> [--json]';

/** What `lamina info --json` prints: the slide's metadata, no pixels. */
export function describeSlide(slide: Slide) {
  return {
    name: slide.name,
    format: slide.format,
    vendor: slide.vendor,
    dimensions: slide.dimensions,
    levels: slide.levels.map((l, i) => ({ level: i, ...l })),
    mpp: slide.mpp,
    objectivePower: slide.objectivePower,
    associatedImages: slide.associatedImages,
    warnings: slide.warnings,
    properties: slide.properties,
  };
}

function formatText(d: ReturnType<typeof describeSlide>): string {
  const lines = [
    `${d.name}`,
    `  format            ${d.format} (vendor ${d.vendor})`,
    `  dimensions        ${d.dimensions.width} × ${d.dimensions.height}`,
    `  mpp               ${d.mpp ? `${d.mpp.x} × ${d.mpp.y} µm/px` : 'unknown'}`,
    `  objective power   ${d.objectivePower ?? 'unknown'}`,
    `  levels            ${d.levels.length}`,
  ];
  for (const l of d.levels) {
    lines.push(`    ${String(l.level).padStart(2)}: ${`${l.width} × ${l.height}`.padEnd(18)} downsample ${l.downsample.toFixed(4).padEnd(10)} tile ${l.tileWidth} × ${l.tileHeight}  ${l.compression}`);
  }
  lines.push(`  associated images ${d.associatedImages.length ? d.associatedImages.map((a) => `${a.name} (${a.width} × ${a.height})`).join(', ') : 'none'}`);
  for (const w of d.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

export const command: Command = {
  summary: 'Show a slide\'s format, levels, resolution and associated images',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' } }, usage);
    if (positionals.length !== 1) throw new InvalidParameterError(`Expected one slide path\nUsage: ${usage}`);
    const slide = await openSlide(positionals[0]!);
    try {
      const d = describeSlide(slide);
      if (values.json) console.log(JSON.stringify(d, null, 2));
      else console.log(formatText(d));
      return 0;
    } finally {
      await slide.close();
    }
  },
};
