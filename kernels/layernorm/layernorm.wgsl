// LayerNorm over the last axis (biased variance, as torch.nn.LayerNorm), one workgroup per row,
// f32 sums with two passes over the row (mean, then squared deviations: no cancellation).
// Rows are read at `row · step` (step = seq picks each image's class token) and written densely.
{{ENABLES}}

struct Params { rows: u32, D: u32, step: u32, groupsX: u32, eps: f32, p0: u32, p1: u32, p2: u32 }

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{ET}}>;
@group(0) @binding(2) var<storage, read> gamma: array<{{ET}}>;
@group(0) @binding(3) var<storage, read> beta: array<{{ET}}>;
@group(0) @binding(4) var<storage, read_write> y: array<{{ET}}>;

var<workgroup> red: array<f32, WG>;

fn total(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * p.groupsX;
  if (row >= p.rows) { return; }
  let src = row * p.step * p.D;
  var s = 0.0;
  for (var i = lid; i < p.D; i += WG) { s += f32(x[src + i]); }
  let mean = total(s, lid) / f32(p.D);
  var q = 0.0;
  for (var i = lid; i < p.D; i += WG) { let d = f32(x[src + i]) - mean; q += d * d; }
  let inv = inverseSqrt(total(q, lid) / f32(p.D) + p.eps);
  let dst = row * p.D;
  for (var i = lid; i < p.D; i += WG) {
    y[dst + i] = {{ET}}((f32(x[src + i]) - mean) * inv * f32(gamma[i]) + f32(beta[i]));
  }
}
