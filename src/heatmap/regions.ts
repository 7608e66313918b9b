/**
 * Anomalous regions: cells at or above a threshold, grouped into 4-connected components, each
 * traced as a polygon along cell edges (outer ring plus holes) in level-0 coordinates.
 *
 * Tracing: every region cell contributes its sides that border a non-region cell as directed
 * edges with the region on the right (screen coordinates, y down); edges are chained into loops,
 * turning left at a vertex shared by two diagonal cells so no ring visits a vertex twice.
 * Outer rings come out with positive shoelace area (counter-clockwise in y-up terms, as RFC 7946
 * asks), holes negative.
 */
import { labelComponents } from '../tissue/morphology.ts';
import type { ScoreGrid } from './score-grid.ts';

/** One region, in level-0 coordinates. */
export interface Region {
  /** 1-based, by descending max score (ties by position). */
  index: number;
  tiles: number;
  /** Level-0 area in pixels² (cells × cell area). */
  area: number;
  bbox: { x: number; y: number; width: number; height: number };
  maxScore: number;
  meanScore: number;
  /** Rings: first the outer ring, then holes; each closed (last point = first). */
  polygon: [number, number][][];
}

/**
 * Finds regions on a grid whose cells are `cellSize` level-0 pixels a side.
 * @example findRegions(grid, 0.5, 2, plan.strideLevel0)
 */
export function findRegions(grid: ScoreGrid, threshold: number, minTiles: number, cellSize: number): Region[] {
  const { cols, rows, data } = grid;
  const mask = new Uint8Array(cols * rows);
  for (let i = 0; i < mask.length; i++) mask[i] = data[i]! >= threshold ? 1 : 0; // NaN compares false
  const { labels, sizes } = labelComponents(mask, cols, rows);
  const found: Omit<Region, 'index'>[] = [];
  const first: number[] = [];
  // One pass for every component's bounds and sums: fine grids (region mode, a cell per 16 px)
  // have millions of cells and many components, so no per-component scan of the whole grid.
  const n = sizes.length;
  const stat = { max: new Float64Array(n).fill(-Infinity), sum: new Float64Array(n), minX: new Int32Array(n).fill(cols), minY: new Int32Array(n).fill(rows),
    maxX: new Int32Array(n).fill(-1), maxY: new Int32Array(n).fill(-1), first: new Int32Array(n).fill(-1) };
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label === 0) continue;
    if (stat.first[label]! < 0) stat.first[label] = i;
    const v = data[i]!;
    if (v > stat.max[label]!) stat.max[label] = v;
    stat.sum[label]! += v;
    const x = i % cols, y = (i - x) / cols;
    if (x < stat.minX[label]!) stat.minX[label] = x;
    if (x > stat.maxX[label]!) stat.maxX[label] = x;
    if (y < stat.minY[label]!) stat.minY[label] = y;
    if (y > stat.maxY[label]!) stat.maxY[label] = y;
  }
  for (let label = 1; label < sizes.length; label++) {
    if (sizes[label]! < minTiles) continue;
    const max = stat.max[label]!, sum = stat.sum[label]!, firstCell = stat.first[label]!;
    const minX = stat.minX[label]!, maxX = stat.maxX[label]!, minY = stat.minY[label]!, maxY = stat.maxY[label]!;
    const rings = traceRings(labels, cols, rows, label, { minX, maxX, minY, maxY }).map((ring) =>
      ring.map(([x, y]) => [round2(x * cellSize), round2(y * cellSize)] as [number, number]),
    );
    first.push(firstCell);
    found.push({
      tiles: sizes[label]!,
      area: round2(sizes[label]! * cellSize * cellSize),
      bbox: { x: round2(minX * cellSize), y: round2(minY * cellSize), width: round2((maxX - minX + 1) * cellSize), height: round2((maxY - minY + 1) * cellSize) },
      maxScore: round6(max),
      meanScore: round6(sum / sizes[label]!),
      polygon: rings,
    });
  }
  const order = found.map((_, i) => i).sort((a, b) => found[b]!.maxScore - found[a]!.maxScore || first[a]! - first[b]!);
  return order.map((i, rank) => ({ index: rank + 1, ...found[i]! }));
}

type Point = [number, number];

/** Loops of one component, outer ring first (largest positive area), holes after. */
export function traceRings(labels: Int32Array, cols: number, rows: number, label: number,
  bounds: { minX: number; maxX: number; minY: number; maxY: number } = { minX: 0, maxX: cols - 1, minY: 0, maxY: rows - 1 }): Point[][] {
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < cols && y < rows && labels[y * cols + x] === label;
  // Directed boundary edges keyed by start vertex; region on the right (y down).
  const outgoing = new Map<number, Point[]>();
  const key = (x: number, y: number) => y * (cols + 1) + x;
  const add = (x0: number, y0: number, x1: number, y1: number) => {
    const k = key(x0, y0);
    const list = outgoing.get(k);
    if (list) list.push([x1, y1]);
    else outgoing.set(k, [[x1, y1]]);
  };
  for (let y = bounds.minY; y <= bounds.maxY; y++) {
    for (let x = bounds.minX; x <= bounds.maxX; x++) {
      if (labels[y * cols + x] !== label) continue;
      if (!inside(x, y - 1)) add(x, y, x + 1, y);
      if (!inside(x + 1, y)) add(x + 1, y, x + 1, y + 1);
      if (!inside(x, y + 1)) add(x + 1, y + 1, x, y + 1);
      if (!inside(x - 1, y)) add(x, y + 1, x, y);
    }
  }
  const loops: Point[][] = [];
  const starts = [...outgoing.keys()].sort((a, b) => a - b);
  for (const startKey of starts) {
    while ((outgoing.get(startKey)?.length ?? 0) > 0) {
      const sx = startKey % (cols + 1), sy = (startKey - sx) / (cols + 1);
      const loop: Point[] = [[sx, sy]];
      let [px, py] = [sx, sy];
      let dir: Point | null = null;
      for (;;) {
        const list = outgoing.get(key(px, py));
        if (!list || list.length === 0) break;
        let pick = 0;
        if (list.length > 1 && dir) {
          // At a pinch (two region cells meeting at a corner) take the left turn (dx, dy) → (dy, −dx):
          // it keeps the outer ring and the hole that touches it as two simple rings.
          const prefs: Point[] = [[dir[1], -dir[0]], dir, [-dir[1], dir[0]]];
          pick = Math.max(0, prefs.map((d) => list.findIndex(([nx, ny]) => nx - px === d[0] && ny - py === d[1])).find((i) => i >= 0) ?? 0);
        }
        const [nx, ny] = list.splice(pick, 1)[0]!;
        dir = [nx - px, ny - py];
        [px, py] = [nx, ny];
        if (px === sx && py === sy) break;
        loop.push([px, py]);
      }
      loops.push(simplify(loop));
    }
  }
  const area = (ring: Point[]) => {
    let s = 0;
    for (let i = 0; i < ring.length; i++) {
      const [x0, y0] = ring[i]!, [x1, y1] = ring[(i + 1) % ring.length]!;
      s += x0 * y1 - x1 * y0;
    }
    return s / 2;
  };
  const withArea = loops.map((ring) => ({ ring, a: area(ring) }));
  const outers = withArea.filter((l) => l.a > 0).sort((p, q) => q.a - p.a);
  const holes = withArea.filter((l) => l.a < 0);
  const closed = (ring: Point[]) => [...ring, ring[0]!];
  return [...outers.slice(0, 1), ...outers.slice(1), ...holes].map((l) => closed(l.ring));
}

/** Drops vertices where the boundary goes straight on. */
function simplify(loop: Point[]): Point[] {
  const out: Point[] = [];
  const n = loop.length;
  for (let i = 0; i < n; i++) {
    const [ax, ay] = loop[(i - 1 + n) % n]!, [bx, by] = loop[i]!, [cx, cy] = loop[(i + 1) % n]!;
    if ((bx - ax) * (cy - by) - (by - ay) * (cx - bx) !== 0) out.push([bx, by]);
  }
  return out;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
