// Flash attention, fast path: the two matrix products of each key tile (S = Q·Kᵀ and O += P·V) run
// on subgroup matrices (tensor cores through chromium_experimental_subgroup_matrix); the online
// softmax runs in f32 on invocations over a workgroup scratch copy of S. FlashAttention-2 order:
// a workgroup owns BR = NSG·R query rows (R = MT·T per subgroup) and walks every key tile of BC keys.
// The O accumulators stay in matrix registers; they are rescaled only when a row's running max grows
// by more than 2^RESCALE_LOG2 (P ≤ 2^8 then, exact enough in f16, far from overflow in f32), which on
// real data happens in the first tiles only.
// Template (double-brace names and the generated blocks are filled by flash-attention-wgsl.ts; with EMULATE the
// matrix builtins become plain WGSL functions so the whole kernel can be tested on adapters without
// the feature). Layout as in flash-attention.portable.wgsl; f16 tensors, offsets and row strides in
// multiples of 8 elements.
{{ENABLES}}

{{BINDINGS}}

const D: u32 = {{D}}u;
const D8: u32 = D / 8u;
const T: u32 = {{T}}u;            // subgroup matrix side (M = N = K)
const SG: u32 = {{SG}}u;          // subgroup size
const NSG: u32 = {{NSG}}u;        // subgroups per workgroup
const R: u32 = {{R}}u;            // query rows per subgroup
const BR: u32 = NSG * R;          // query rows per workgroup
const BC: u32 = {{BC}}u;          // keys per tile
const WG: u32 = NSG * SG;
const LPR: u32 = {{LPR}}u;        // lanes sharing one row in the softmax
const RPL: u32 = {{RPL}}u;        // rows per lane in the softmax
const CPL: u32 = BC / LPR;        // score columns per lane
// Row strides of the workgroup tiles, padded by 16 bytes against bank conflicts and kept
// 16-byte aligned for the matrix loads.
const KS: u32 = D + 8u;           // K and V tiles, f16
const SS: u32 = BC + 4u;          // score scratch, f32
const PST: u32 = {{PST}}u;        // P (and Q staging) scratch, f16
const MASKED: f32 = -1.0e30;
const RESCALE_LOG2: f32 = 8.0;

// Loop bounds pass through opaque(): with OPAQUE = 1 (CPU adapters such as lavapipe) they become
// run-time values so LLVM does not unroll every loop, which took lavapipe 17 s to compile one kernel.
// p.pad is always 0, so the value never changes.
fn opaque(n: u32) -> u32 { return n + p.pad * {{OPAQUE}}u; }

// KVB = 2 (double buffering): tile t+1 is staged into one half while tile t is read from the other
const KVB: u32 = {{KVB}}u;
var<workgroup> kT: array<f16, KVB * BC * KS>;
var<workgroup> vT: array<f16, KVB * BC * KS>;
var<workgroup> sS: array<f32, BR * SS>;
var<workgroup> pS: array<f16, BR * PST>;
var<workgroup> keep: array<f32, KVB * BC>;
{{FLAG_DECL}}

{{EMU_FUNCS}}
{{PREFETCH_FNS}}
{{SCALED8}}

// Eight halves from one 16-byte global load into a workgroup f16 array.
fn put8K(at: u32, w: vec4<u32>) {
  let a = bitcast<vec2<f16>>(w.x); let b = bitcast<vec2<f16>>(w.y);
  let c = bitcast<vec2<f16>>(w.z); let d = bitcast<vec2<f16>>(w.w);
  kT[at] = a.x; kT[at + 1u] = a.y; kT[at + 2u] = b.x; kT[at + 3u] = b.y;
  kT[at + 4u] = c.x; kT[at + 5u] = c.y; kT[at + 6u] = d.x; kT[at + 7u] = d.y;
}
fn put8V(at: u32, w: vec4<u32>) {
  let a = bitcast<vec2<f16>>(w.x); let b = bitcast<vec2<f16>>(w.y);
  let c = bitcast<vec2<f16>>(w.z); let d = bitcast<vec2<f16>>(w.w);
  vT[at] = a.x; vT[at + 1u] = a.y; vT[at + 2u] = b.x; vT[at + 3u] = b.y;
  vT[at + 4u] = c.x; vT[at + 5u] = c.y; vT[at + 6u] = d.x; vT[at + 7u] = d.y;
}
fn put8P(at: u32, w: vec4<u32>) {
  let a = bitcast<vec2<f16>>(w.x); let b = bitcast<vec2<f16>>(w.y);
  let c = bitcast<vec2<f16>>(w.z); let d = bitcast<vec2<f16>>(w.w);
  pS[at] = a.x; pS[at + 1u] = a.y; pS[at + 2u] = b.x; pS[at + 3u] = b.y;
  pS[at + 4u] = c.x; pS[at + 5u] = c.y; pS[at + 6u] = d.x; pS[at + 7u] = d.y;
}

// 1.0 when the key exists and is not masked.
fn keepOf(b: u32, key: u32) -> f32 {
  var ok = key < p.seqK;
  if (ok && p.hasMask != 0u) { ok = mask[p.maskOffset + b * p.seqK + key] != 0u; }
  return select(0.0, 1.0, ok);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_id) sg: u32) {
  let b = wg.z;
  let h = wg.y;
  let q0 = wg.x * BR;
  // subgroup_id (not lid / SG) so that WGSL knows the matrix offsets are subgroup-uniform
  let sgRow0 = sg * R;
  let part = lane % LPR;

  // Q tile → pS (zeros past seqQ) in chunks of QW columns, then into matrix registers for the
  // whole key loop
{{LOAD_Q}}
{{DECLARE_O}}
  var mRow: array<f32, RPL>;
  var lRow: array<f32, RPL>;
  var alphaRow: array<f32, RPL>;
  for (var rr = 0u; rr < opaque(RPL); rr++) { mRow[rr] = MASKED; lRow[rr] = 0.0; alphaRow[rr] = 1.0; }
{{SV_DECL}}

{{PROLOGUE}}
  for (var kb = 0u; kb < p.seqK; kb += BC) {
{{TOP}}
{{QK}}
    workgroupBarrier();
{{AFTER_QK}}
{{SOFTMAX}}
{{RESCALE_READ}}
    if (rescale != 0u) {
{{RESCALE}}
    }
{{PV}}
{{BOTTOM}}
  }

  // O / l → output (rows past seqQ are not written; fully masked rows are zeros)
  workgroupBarrier();
{{OUTPUT}}
}

// Scales this subgroup's rows of the sS chunk (width W columns) by alphaRow.
fn scaleChunk(sgRow0: u32, lane: u32, part: u32, W: u32, alphaRow: array<f32, RPL>) {
  for (var rr = 0u; rr < opaque(RPL); rr++) {
    let row = lane / LPR + rr * (SG / LPR);
    let base = (sgRow0 + row) * SS;
    for (var c = part; c < W; c += LPR) { sS[base + c] *= alphaRow[rr]; }
  }
}

// Writes this subgroup's rows of the sS chunk (W columns from column c0 of the head) as f16 pairs.
fn writeChunk(b: u32, h: u32, q0: u32, sgRow0: u32, lane: u32, part: u32, c0: u32, W: u32, lRow: array<f32, RPL>) {
  for (var rr = 0u; rr < opaque(RPL); rr++) {
    let row = lane / LPR + rr * (SG / LPR);
    let gRow = q0 + sgRow0 + row;
    if (gRow < p.seqQ) {
      let base = (sgRow0 + row) * SS;
      let inv = select(0.0, 1.0 / lRow[rr], lRow[rr] > 0.0);
      let outBase = (p.oOffset + (b * p.seqQ + gRow) * p.oRowStride + h * D + c0) / 2u;
      for (var cp = part; cp < W / 2u; cp += LPR) {
        o[outBase + cp] = pack2x16float(vec2<f32>(sS[base + 2u * cp], sS[base + 2u * cp + 1u]) * inv);
      }
    }
  }
}
