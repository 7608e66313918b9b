// Flash attention, portable path: one invocation per query row, key/value tiles in workgroup memory,
// online softmax in f32, never an Sq×Sk matrix. Runs on any WebGPU adapter (no optional feature:
// f16 tensors are read as packed u32 pairs and unpacked with unpack2x16float).
// Template (double-brace names filled by flash-attention-wgsl.ts): D head size, BR rows per workgroup (=
// invocations), BC keys per tile, VEC the 4-element storage type, LOAD4/STORE4 its conversions.
// Layout: element (b, s, h, d) of a tensor is at offset + (b * seq + s) * rowStride + h * D + d.

{{BINDINGS}}

const D: u32 = {{D}}u;
const D4: u32 = D / 4u;
const BR: u32 = {{BR}}u;
const BC: u32 = {{BC}}u;
// A finite stand-in for -inf (WGSL forbids infinities); scores never come near it.
const MASKED: f32 = -1.0e30;

// Loop bounds pass through opaque(): with OPAQUE = 1 (CPU adapters such as lavapipe) they become
// run-time values so LLVM does not unroll every loop, which took lavapipe 17 s to compile one kernel.
// p.pad is always 0, so the value never changes.
fn opaque(n: u32) -> u32 { return n + p.pad * {{OPAQUE}}u; }

var<workgroup> kTile: array<vec4<f32>, BC * D4>;
var<workgroup> vTile: array<vec4<f32>, BC * D4>;
var<workgroup> keep: array<u32, BC>;

fn load4(w: {{VEC}}) -> vec4<f32> { {{LOAD4}} }
fn store4(x: vec4<f32>) -> {{VEC}} { {{STORE4}} }

@compute @workgroup_size(BR)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wg.z;
  let h = wg.y;
  let row = wg.x * BR + lid;
  let rowOk = row < p.seqQ;
  var qr: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>;
  var s: array<f32, BC>;
  if (rowOk) {
    let base = (p.qOffset + (b * p.seqQ + row) * p.qRowStride + h * D) / 4u;
    // scores come out in log2 units: exp2(s) = exp(scale * q·k)
    for (var i = 0u; i < opaque(D4); i++) { qr[i] = load4(q[base + i]) * p.scaleLog2; }
  }
  var m = MASKED;
  var l = 0.0;
  for (var kb = 0u; kb < p.seqK; kb += BC) {
    workgroupBarrier();
    for (var i = lid; i < BC * D4; i += BR) {
      let key = kb + i / D4;
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (key < p.seqK) {
        let tok = b * p.seqK + key;
        kv = load4(k[(p.kOffset + tok * p.kRowStride + h * D) / 4u + i % D4]);
        vv = load4(v[(p.vOffset + tok * p.vRowStride + h * D) / 4u + i % D4]);
      }
      kTile[i] = kv;
      vTile[i] = vv;
    }
    for (var j = lid; j < opaque(BC); j += BR) {
      let key = kb + j;
      var ok = key < p.seqK;
      if (ok && p.hasMask != 0u) { ok = mask[p.maskOffset + b * p.seqK + key] != 0u; }
      keep[j] = select(0u, 1u, ok);
    }
    workgroupBarrier();
    var blockMax = MASKED;
    for (var j = 0u; j < opaque(BC); j++) {
      var dotv = vec4<f32>(0.0);
      for (var i = 0u; i < opaque(D4); i++) { dotv += qr[i] * kTile[j * D4 + i]; }
      let sj = select(MASKED, dotv.x + dotv.y + dotv.z + dotv.w, keep[j] != 0u);
      s[j] = sj;
      blockMax = max(blockMax, sj);
    }
    let mNew = max(m, blockMax);
    // m == MASKED (nothing kept yet) gives alpha 0 or 1 against zero l and acc: harmless
    let alpha = exp2(m - mNew);
    l *= alpha;
    for (var i = 0u; i < opaque(D4); i++) { acc[i] *= alpha; }
    for (var j = 0u; j < opaque(BC); j++) {
      let pj = select(0.0, exp2(s[j] - mNew), keep[j] != 0u);
      l += pj;
      for (var i = 0u; i < opaque(D4); i++) { acc[i] += pj * vTile[j * D4 + i]; }
    }
    m = mNew;
  }
  if (rowOk) {
    // a row whose keys are all masked has l == 0 and is defined as zeros
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let base = (p.oOffset + (b * p.seqQ + row) * p.oRowStride + h * D) / 4u;
    for (var i = 0u; i < opaque(D4); i++) { o[base + i] = store4(acc[i] * inv); }
  }
}
