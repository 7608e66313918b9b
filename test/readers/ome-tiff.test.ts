import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { MemorySource } from '../../src/io/byte-source.ts';
import { openSlideSource } from '../../src/readers/registry.ts';
import { omePhysicalSize } from '../../src/readers/ome-tiff.ts';
import { buildTiff, cutTiles, tiledRgbTags } from './helpers/tiny-tiff.ts';

/** A gradient whose value encodes position, so a misplaced tile shows. */
function gradient(width: number, height: number, seed: number): Buffer {
  const b = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const o = (y * width + x) * 3;
    b[o] = (x + seed) & 0xff; b[o + 1] = (y * 3) & 0xff; b[o + 2] = ((x ^ y) + seed) & 0xff;
  }
  return b;
}

const omeXml = (extra: string) => `<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Instrument ID="Instrument:0"><Objective ID="Objective:0" NominalMagnification="40.0"/></Instrument><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="200" SizeY="150" SizeC="3" SizeZ="1" SizeT="1" ${extra}><Channel ID="Channel:0:0" SamplesPerPixel="3"/><TiffData/></Pixels></Image></OME>`;

function omeTiff(xml: string): { file: Buffer; levels: Buffer[] } {
  const sizes: Array<[number, number]> = [[200, 150], [100, 75], [50, 37]];
  const levels = sizes.map(([w, h], i) => gradient(w, h, i * 40));
  const ifd = (i: number, extra: Array<[number, number, string | number[]]> = []) => ({
    tags: tiledRgbTags(sizes[i]![0], sizes[i]![1], 64, 8, [[254, 4, [i === 0 ? 0 : 1]], ...extra]),
    blocks: cutTiles(levels[i]!, sizes[i]![0], sizes[i]![1], 64).map((t) => deflateSync(t)),
  });
  const file = buildTiff([{ ...ifd(0, [[270, 2, xml]]), subIfds: [ifd(1), ifd(2)] }]);
  return { file, levels };
}

test('OME-TIFF: levels come from SubIFDs and the physical size from the OME-XML', async () => {
  const { file, levels } = omeTiff(omeXml('PhysicalSizeX="0.25" PhysicalSizeY="0.5" PhysicalSizeXUnit="µm" PhysicalSizeYUnit="nm"'));
  const slide = await openSlideSource(new MemorySource('pyramid.ome.tiff', file));
  try {
    assert.equal(slide.format, 'ome-tiff');
    assert.deepEqual(slide.levels.map((l) => [l.width, l.height, l.compression]), [[200, 150, 'deflate'], [100, 75, 'deflate'], [50, 37, 'deflate']]);
    assert.deepEqual(slide.mpp, { x: 0.25, y: 0.0005 });
    assert.equal(slide.objectivePower, 40);
    for (let level = 0; level < 3; level++) {
      const { width, height } = slide.levels[level]!;
      const img = await slide.readRegion(0, 0, level, width, height);
      assert.ok(img.data.equals(levels[level]!), `level ${level} pixels`);
    }
    // level-0 coordinates at level 2: x = 100 → level x = round(100 / 4.03) = 25
    const ds = slide.levels[2]!.downsample;
    const part = await slide.readRegion(100, 40, 2, 10, 10);
    const lx = Math.round(100 / ds), ly = Math.round(40 / ds);
    assert.deepEqual([...part.data.subarray(0, 3)], [...levels[2]!.subarray((ly * 50 + lx) * 3, (ly * 50 + lx) * 3 + 3)]);
  } finally {
    await slide.close();
  }
});

test('OME-XML physical size: units, missing values', () => {
  assert.deepEqual(omePhysicalSize(omeXml('PhysicalSizeX="0.5" PhysicalSizeY="0.5"')), { x: 0.5, y: 0.5 });
  assert.deepEqual(omePhysicalSize(omeXml('PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="0.25"')), { x: 0.25, y: 0.25 });
  assert.equal(omePhysicalSize(omeXml('')), null);
  assert.equal(omePhysicalSize(omeXml('PhysicalSizeX="-1"')), null);
});

test('OME-TIFF without physical size opens with a warning', async () => {
  const slide = await openSlideSource(new MemorySource('nosize.ome.tiff', omeTiff(omeXml('')).file));
  try {
    assert.equal(slide.mpp, null);
    assert.ok(slide.warnings.some((w) => /PhysicalSize/.test(w)), slide.warnings.join('; '));
  } finally {
    await slide.close();
  }
});
