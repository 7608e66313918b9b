// Row softmax for attention as two GEMMs: P[r, c] = exp(scale·S[r, c] − max) / Σ for c < n, and
// P[r, c] = 0 for n ≤ c < ld (the padding columns the P·V product reads as K). S is f32 (the Q·Kᵀ
// GEMM writes f32 so large logits keep their digits), P is ET. One workgroup of 64 per row.
{{ENABLES}}

struct Params { rows: u32, n: u32, ld: u32, groupsX: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read_write> pm: array<{{ET}}>;

var<workgroup> red: array<f32, 64>;

fn reduceMax(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w /= 2u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w /= 2u) {
    if (lid < w) { red[lid] = red[lid] + red[lid + w]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * p.groupsX;
  if (row >= p.rows) { return; }
  let base = row * p.ld;
  var m = -3.0e38;
  for (var c = lid; c < p.n; c += 64u) { m = max(m, s[base + c] * p.scale); }
  m = reduceMax(lid, m);
  var sum = 0.0;
  for (var c = lid; c < p.n; c += 64u) { sum += exp(s[base + c] * p.scale - m); }
  sum = reduceSum(lid, sum);
  let inv = 1.0 / sum;
  for (var c = lid; c < p.ld; c += 64u) {
    var v = 0.0;
    if (c < p.n) { v = exp(s[base + c] * p.scale - m) * inv; }
    pm[base + c] = {{ET}}(v);
  }
}
