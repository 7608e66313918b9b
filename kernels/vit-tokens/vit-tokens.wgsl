// Token assembly: x[b, t] = (t < PREFIX ? prefixTokens[t] : patches[b, t − PREFIX]) + pos[t],
// for the class and register tokens and the embedded patches of each image. `pos` is the full
// position table for this sequence (zero rows for prefix tokens a DINOv2-style model leaves out,
// interpolated on the host when the grid differs from the trained one). One invocation per element.
{{ENABLES}}

struct Params { seq: u32, prefix: u32, D: u32, total: u32, groupsX: u32, p0: u32, p1: u32, p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> patches: array<{{ET}}>;
@group(0) @binding(2) var<storage, read> prefixTokens: array<{{ET}}>;
@group(0) @binding(3) var<storage, read> pos: array<{{ET}}>;
@group(0) @binding(4) var<storage, read_write> x: array<{{ET}}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * p.groupsX) * 256u + lid;
  if (i >= p.total) { return; }
  let d = i % p.D;
  let row = i / p.D;
  let t = row % p.seq;
  let b = row / p.seq;
  var v: f32;
  if (t < p.prefix) {
    v = f32(prefixTokens[t * p.D + d]);
  } else {
    v = f32(patches[(b * (p.seq - p.prefix) + t - p.prefix) * p.D + d]);
  }
  x[i] = {{ET}}(v + f32(pos[t * p.D + d]));
}
