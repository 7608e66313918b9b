/** CPU twin of the patch embedding: a stride-P Conv2d, float64 sums, output [images · grid², D]. */
export function patchEmbedCpu(pixels: ArrayLike<number>, images: number, size: number, P: number, weight: ArrayLike<number>, bias: ArrayLike<number>, D: number): Float64Array {
  const grid = size / P;
  const out = new Float64Array(images * grid * grid * D);
  for (let b = 0; b < images; b++) for (let gy = 0; gy < grid; gy++) for (let gx = 0; gx < grid; gx++) {
    const row = (b * grid + gy) * grid + gx;
    for (let o = 0; o < D; o++) {
      let acc = bias[o]!;
      for (let c = 0; c < 3; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++) {
        acc += weight[((o * 3 + c) * P + ky) * P + kx]! * pixels[((b * 3 + c) * size + gy * P + ky) * size + gx * P + kx]!;
      }
      out[row * D + o] = acc;
    }
  }
  return out;
}
