// Patch embedding, step 1: im2col. Pixels → one row per patch of the 3·P·P values in (channel, y, x)
// order, the flattening of a Conv2d weight [D, 3, P, P], stored in ET (f16 or f32). Step 2 is the
// GEMM with the weight as [3·P·P, D]. One invocation per element. Two inputs (patch-embed.ts fills in
// the input binding and the fetch below):
//  - normalised NCHW f32 pixels;
//  - raw tiles as interleaved RGB bytes (HWC per image, packed four to a u32), each byte normalised
//    through `table` (3 × 256 f32: channel c, byte v → (v/255 − mean_c)/std_c as the host computes
//    it), so the columns are exactly those of the f32 path while the upload is a quarter of the
//    bytes and the host does no per-pixel work.
{{ENABLES}}

struct Params { size: u32, P: u32, grid: u32, K: u32, total: u32, groupsX: u32, p0: u32, p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read_write> cols: array<{{ET}}>;
{{INPUT}}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * p.groupsX) * 256u + lid;
  if (i >= p.total) { return; }
  let col = i % p.K;
  let row = i / p.K;
  let n = p.grid * p.grid;
  let b = row / n;
  let gy = (row % n) / p.grid;
  let gx = row % p.grid;
  let PP = p.P * p.P;
  let c = col / PP;
  let ky = (col % PP) / p.P;
  let kx = col % p.P;
  let y = gy * p.P + ky;
  let x = gx * p.P + kx;
{{FETCH}}
}
