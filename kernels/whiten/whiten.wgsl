// Mahalanobis distances on the GPU: out[i] = |W (x_i − μ)| for a lower-triangular whitening W = L⁻¹
// (src/scoring/mahalanobis.ts `whiteningOf`), i.e. a GEMM Y = (X − μ) Wᵀ fused with row squared
// norms, so Y never reaches memory. A workgroup takes 64 rows (cells); for each 64-wide tile of
// outputs it accumulates over K slices of 16 staged in workgroup memory (the centred rows and W's
// tile), K ending at the tile's diagonal (W is lower-triangular). Thread t keeps a 4 × 4 register
// block (rows t%16 + 16a, outputs t/16 + 16b); the 16 threads of a row sum their squares at the end.
// W and μ come padded to `dp` (a multiple of 64, zeros beyond the dimension).

struct Params { n: u32, d: u32, dp: u32, pad: u32 }

const RT: u32 = 64u;
const OT: u32 = 64u;
const KS: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mu: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> dist: array<f32>;

var<workgroup> xs: array<f32, RT * (KS + 1u)>;
var<workgroup> ws: array<f32, OT * (KS + 1u)>;
var<workgroup> red: array<f32, 16u * RT>;

// Keeps lavapipe from unrolling the fixed-count loops (its compile time explodes otherwise).
fn opaque(v: u32) -> u32 { return v + p.pad * {{OPAQUE}}u; }

@compute @workgroup_size(256)
fn whiten_norms(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row0 = (wg.x + wg.y * 65535u) * RT;
  let tr = t % 16u;
  let to = t / 16u;
  var sq: array<f32, 4>;
  for (var a = 0u; a < opaque(4u); a++) { sq[a] = 0.0; }
  for (var o0 = 0u; o0 < p.dp; o0 += OT) {
    var acc: array<f32, 16>;
    for (var i = 0u; i < opaque(16u); i++) { acc[i] = 0.0; }
    let kEnd = o0 + OT;
    for (var k0 = 0u; k0 < kEnd; k0 += KS) {
      workgroupBarrier();
      for (var i = t; i < RT * KS; i += 256u) {
        let r = i / KS; let kk = i % KS;
        let row = row0 + r; let col = k0 + kk;
        var v = 0.0;
        if (row < p.n && col < p.d) { v = x[row * p.d + col] - mu[col]; }
        xs[r * (KS + 1u) + kk] = v;
      }
      for (var i = t; i < OT * KS; i += 256u) {
        let o = i / KS; let kk = i % KS;
        ws[o * (KS + 1u) + kk] = w[(o0 + o) * p.dp + k0 + kk];
      }
      workgroupBarrier();
      for (var kk = 0u; kk < opaque(KS); kk++) {
        var xv: array<f32, 4>;
        var wv: array<f32, 4>;
        for (var a = 0u; a < opaque(4u); a++) {
          xv[a] = xs[(tr + 16u * a) * (KS + 1u) + kk];
          wv[a] = ws[(to + 16u * a) * (KS + 1u) + kk];
        }
        for (var a = 0u; a < opaque(4u); a++) {
          for (var b = 0u; b < opaque(4u); b++) { acc[a * 4u + b] += xv[a] * wv[b]; }
        }
      }
    }
    for (var a = 0u; a < opaque(4u); a++) {
      for (var b = 0u; b < opaque(4u); b++) { sq[a] += acc[a * 4u + b] * acc[a * 4u + b]; }
    }
  }
  for (var a = 0u; a < opaque(4u); a++) { red[to * RT + tr + 16u * a] = sq[a]; }
  workgroupBarrier();
  if (t < RT && row0 + t < p.n) {
    var s = 0.0;
    for (var j = 0u; j < opaque(16u); j++) { s += red[j * RT + t]; }
    dist[row0 + t] = sqrt(s);
  }
}
