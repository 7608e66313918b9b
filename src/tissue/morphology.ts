/**
 * Binary morphology on a 0/1 mask grid (row-major, `width * height`). Square structuring elements
 * of radius r (a (2r+1)² box), computed separably. The box is clipped at the grid's edge (pixels
 * outside are ignored), so tissue touching the border is not eroded away.
 */

function boxPass(
  src: Uint8Array, width: number, height: number, radius: number, wantAll: boolean,
  tmp: Uint8Array = new Uint8Array(src.length), out: Uint8Array = new Uint8Array(src.length),
): Uint8Array {
  // Separable: a box min (erode) or max (dilate) equals a row pass followed by a column pass.
  // `out` may be `src`: the row pass has read all of `src` before the column pass writes.
  // Erosion needs every in-grid pixel of the clipped window set; dilation needs one.
  const need = (lo: number, hi: number) => (wantAll ? hi - lo + 1 : 1);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let count = 0;
    for (let x = -radius; x < width + radius; x++) {
      const add = x + radius;
      if (add < width && add >= 0) count += src[row + add]!;
      const drop = x - radius - 1;
      if (drop >= 0 && drop < width) count -= src[row + drop]!;
      if (x >= 0 && x < width) tmp[row + x] = count >= need(Math.max(0, x - radius), Math.min(width - 1, x + radius)) ? 1 : 0;
    }
  }
  for (let x = 0; x < width; x++) {
    let count = 0;
    for (let y = -radius; y < height + radius; y++) {
      const add = y + radius;
      if (add < height && add >= 0) count += tmp[add * width + x]!;
      const drop = y - radius - 1;
      if (drop >= 0 && drop < height) count -= tmp[drop * width + x]!;
      if (y >= 0 && y < height) out[y * width + x] = count >= need(Math.max(0, y - radius), Math.min(height - 1, y + radius)) ? 1 : 0;
    }
  }
  return out;
}

/** Erosion: a pixel stays set only if its whole (2r+1)² box is set. */
export function erode(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return radius <= 0 ? mask.slice() : boxPass(mask, width, height, radius, true);
}

/** Dilation: a pixel is set if any pixel of its (2r+1)² box is set. */
export function dilate(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return radius <= 0 ? mask.slice() : boxPass(mask, width, height, radius, false);
}

/** Closing (dilate then erode) fills gaps narrower than the box. */
export function close(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return erode(dilate(mask, width, height, radius), width, height, radius);
}

/** Opening (erode then dilate) removes specks narrower than the box. */
export function open(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return dilate(erode(mask, width, height, radius), width, height, radius);
}

/**
 * `open(close(mask, closeRadius), openRadius)` computed in place with one scratch grid (the
 * functions above allocate two grids a pass: 32 MiB of garbage on a 2048² mask). Returns `mask`.
 */
export function closeThenOpenInPlace(mask: Uint8Array, width: number, height: number, closeRadius: number, openRadius: number): Uint8Array {
  const tmp = new Uint8Array(mask.length);
  const pass = (radius: number, wantAll: boolean) => { if (radius > 0) boxPass(mask, width, height, radius, wantAll, tmp, mask); };
  pass(closeRadius, false); // close: dilate, then erode
  pass(closeRadius, true);
  pass(openRadius, true); // open: erode, then dilate
  pass(openRadius, false);
  return mask;
}

/**
 * Labels 4-connected components of set pixels: returns per-pixel labels (0 = background,
 * 1..count) and each label's pixel count (index 0 unused).
 */
export function labelComponents(mask: Uint8Array, width: number, height: number): { labels: Int32Array; sizes: number[] } {
  const labels = new Int32Array(mask.length);
  const sizes = [0];
  const stack: number[] = [];
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    next++;
    let size = 0;
    labels[start] = next;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      size++;
      const x = p % width;
      const y = (p - x) / width;
      if (x > 0 && mask[p - 1] && !labels[p - 1]) { labels[p - 1] = next; stack.push(p - 1); }
      if (x < width - 1 && mask[p + 1] && !labels[p + 1]) { labels[p + 1] = next; stack.push(p + 1); }
      if (y > 0 && mask[p - width] && !labels[p - width]) { labels[p - width] = next; stack.push(p - width); }
      if (y < height - 1 && mask[p + width] && !labels[p + width]) { labels[p + width] = next; stack.push(p + width); }
    }
    sizes.push(size);
  }
  return { labels, sizes };
}

/** Clears set components smaller than `minSize` pixels. */
export function removeSmallComponents(mask: Uint8Array, width: number, height: number, minSize: number): Uint8Array {
  if (minSize <= 1) return mask.slice();
  const { labels, sizes } = labelComponents(mask, width, height);
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    const label = labels[i]!;
    if (label && sizes[label]! >= minSize) out[i] = 1;
  }
  return out;
}
