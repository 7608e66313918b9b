/**
 * regions.geojson as QuPath imports it (File → Import objects, or drag and drop): a
 * FeatureCollection of Polygon features in level-0 pixel coordinates, each with
 * `"objectType": "annotation"`, a classification (name + RGB colour) and measurements.
 */
import { createHash } from 'node:crypto';
import type { Region } from './regions.ts';

/** The classification every region gets. */
export const REGION_CLASS = { name: 'Anomaly', color: [220, 30, 30] as [number, number, number] };

/**
 * Deterministic RFC 4122-shaped id (version 4 layout) from a seed string, so two runs on the same
 * slide write identical files.
 */
export function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The GeoJSON object; `idSeed` (e.g. the slide's sha256) makes feature ids stable. */
export function regionsGeoJson(regions: readonly Region[], idSeed: string): object {
  return {
    type: 'FeatureCollection',
    features: regions.map((region) => ({
      type: 'Feature',
      id: stableUuid(`${idSeed}:region:${region.index}`),
      geometry: { type: 'Polygon', coordinates: region.polygon },
      properties: {
        objectType: 'annotation',
        name: `Anomaly ${region.index}`,
        classification: REGION_CLASS,
        isLocked: false,
        measurements: {
          'Max score': region.maxScore,
          'Mean score': region.meanScore,
          Tiles: region.tiles,
          'Area px^2': region.area,
        },
      },
    })),
  };
}
