// GEMM, portable path: Y[M, N] = epilogue(X[M, K] · W[K, N]) with workgroup-memory tiles of
// BM×BK (X) and BK×BN (W), 16×16 invocations each owning a 4×4 block of outputs strided by 16
// (so neighbouring invocations touch neighbouring columns: coalesced loads and stores).
// Storage element type ET (f16 or f32), accumulation in f32. Epilogue, in this order:
// y = acc + bias[n]; GELU (exact, erf) when GELU = 1; when RESIDUAL = 1, y = out[m, n] + gamma[n]·y
// (the residual stream is the output buffer itself: a ViT block adds its branch in place).
// Batch entry z = workgroup_id.z reads and writes at the bases and leading dimensions in Params;
// with TRANSPOSE_W = 1, W is given as [N, K]. Output element type YT.
// Template values in double braces are filled by matmul-wgsl.ts.
{{ENABLES}}

{{PARAMS_STRUCT}}

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const GELU: u32 = {{GELU}}u;
const RESIDUAL: u32 = {{RESIDUAL}}u;
const TRANSPOSE_W: u32 = {{TRANSPOSE_W}}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{ET}}>;
@group(0) @binding(2) var<storage, read> w: array<{{ET}}>;
@group(0) @binding(3) var<storage, read> bias: array<{{ET}}>;
@group(0) @binding(4) var<storage, read> gamma: array<{{ET}}>;
@group(0) @binding(5) var<storage, read_write> y: array<{{YT}}>;

var<workgroup> xs: array<f32, BK * BM>;   // transposed: xs[k * BM + m]
var<workgroup> ws: array<f32, BK * BN>;

// Run-time loop bounds on CPU adapters (p.pad is 0) so LLVM does not unroll everything.
fn opaque(n: u32) -> u32 { return n + p.pad * {{OPAQUE}}u; }

{{GELU_FN}}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let li = lid.y * 16u + lid.x;
  let bi = wg.z / p.heads;
  let bj = wg.z % p.heads;
  let xb = bi * p.xI + bj * p.xJ + p.xO;
  let wb = bi * p.wI + bj * p.wJ + p.wO;
  let yb = bi * p.yI + bj * p.yJ + p.yO;
  var acc: array<f32, 16>;
  for (var i = 0u; i < opaque(16u); i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var i = li; i < BM * BK; i += 256u) {
      let r = i / BK;
      let c = i % BK;
      var v = 0.0;
      if (row0 + r < p.M && k0 + c < p.K) { v = f32(x[xb + (row0 + r) * p.ldx + k0 + c]); }
      xs[c * BM + r] = v;
    }
    for (var i = li; i < BK * BN; i += 256u) {
      let r = i / BN;
      let c = i % BN;
      var v = 0.0;
      if (k0 + r < p.K && k0 + r < p.kw && col0 + c < p.N) {
        if (TRANSPOSE_W == 1u) { v = f32(w[wb + (col0 + c) * p.ldw + k0 + r]); } else { v = f32(w[wb + (k0 + r) * p.ldw + col0 + c]); }
      }
      ws[r * BN + c] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < opaque(BK); kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < opaque(4u); i++) {
        a[i] = xs[kk * BM + lid.y + 16u * i];
        b[i] = ws[kk * BN + lid.x + 16u * i];
      }
      for (var i = 0u; i < opaque(4u); i++) {
        for (var j = 0u; j < opaque(4u); j++) { acc[i * 4u + j] += a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < opaque(4u); i++) {
    let m = row0 + lid.y + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < opaque(4u); j++) {
      let n = col0 + lid.x + 16u * j;
      if (n >= p.N) { continue; }
      var v = acc[i * 4u + j] + f32(bias[n]);
      if (GELU == 1u) { v = gelu(v); }
      let at = yb + m * p.ldy + n;
      if (RESIDUAL == 1u) { v = f32(y[at]) + f32(gamma[n]) * v; }
      y[at] = {{YT}}(v);
    }
  }
}
