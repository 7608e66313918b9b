/**
 * Pyramid geometry and the box filter that builds each level from the one above it. Level L is
 * `ceil(previous / factor)` on each side, and a level-L tile covers exactly factor × factor tiles
 * of level L-1 (tile size is the same on every level), so the pyramid can be built depth-first
 * with one tile buffer per level.
 */

export interface LevelGeometry {
  width: number;
  height: number;
  /** Level-0 pixels per pixel of this level (factor^L). */
  downsample: number;
  cols: number;
  rows: number;
}

/**
 * Levels from full size down until the longer side is at most `smallestSide`.
 * @defaultValue smallestSide 2048
 */
export function pyramidLevels(width: number, height: number, tileSize: number, factor: number, smallestSide = 2048): LevelGeometry[] {
  const levels: LevelGeometry[] = [];
  let w = width, h = height, d = 1;
  for (;;) {
    levels.push({ width: w, height: h, downsample: d, cols: Math.ceil(w / tileSize), rows: Math.ceil(h / tileSize) });
    if (Math.max(w, h) <= smallestSide) break;
    w = Math.ceil(w / factor);
    h = Math.ceil(h / factor);
    d *= factor;
  }
  return levels;
}

/**
 * Mean of each factor × factor block of an RGB tile (size × size) — what the next level shows.
 * Integer rounding is to nearest, so a uniform tile stays exactly uniform.
 */
export function boxDownsample(src: Uint8Array, size: number, factor: number): Uint8Array {
  const n = size / factor;
  const out = new Uint8Array(n * n * 3);
  const area = factor * factor, half = area >> 1;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < factor; j++) {
        let p = ((y * factor + j) * size + x * factor) * 3;
        for (let i = 0; i < factor; i++, p += 3) { r += src[p]; g += src[p + 1]; b += src[p + 2]; }
      }
      const o = (y * n + x) * 3;
      out[o] = ((r + half) / area) | 0;
      out[o + 1] = ((g + half) / area) | 0;
      out[o + 2] = ((b + half) / area) | 0;
    }
  }
  return out;
}

/** Copies a reduced child tile into its place (col, row within the parent's factor × factor block). */
export function blitChild(parent: Uint8Array, size: number, child: Uint8Array, factor: number, i: number, j: number): void {
  const n = size / factor;
  for (let y = 0; y < n; y++) {
    parent.set(child.subarray(y * n * 3, (y + 1) * n * 3), ((j * n + y) * size + i * n) * 3);
  }
}

/** Level-0 tiles in the depth-first order in which the pyramid consumes them. */
export function level0Order(levels: LevelGeometry[], factor: number): Int32Array {
  const out = new Int32Array(levels[0].cols * levels[0].rows * 2);
  let k = 0;
  const visit = (level: number, c: number, r: number): void => {
    if (level === 0) { out[k++] = c; out[k++] = r; return; }
    const below = levels[level - 1];
    for (let j = 0; j < factor; j++) {
      for (let i = 0; i < factor; i++) {
        const cc = c * factor + i, rr = r * factor + j;
        if (cc < below.cols && rr < below.rows) visit(level - 1, cc, rr);
      }
    }
  };
  const top = levels.length - 1;
  for (let r = 0; r < levels[top].rows; r++) for (let c = 0; c < levels[top].cols; c++) visit(top, c, r);
  return out;
}
