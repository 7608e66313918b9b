// k nearest bank entries per query by squared Euclidean distance, in two kernels.
// knn_partial: a workgroup takes QT = 32 queries and one chunk of the bank; 8 invocations share a
// query, each keeping a sorted top-K (K ≤ KMAX) of its bank entries in registers. Distances are
// Σ (q − b)² accumulated over 32-dimension slices staged in workgroup memory (each bank slice is
// reused by the 32 queries). Each invocation writes its list: partial[(q · chunks + c) · 8 + lane].
// knn_merge: one invocation per query merges its chunks · 8 lists into the final top-K and the
// score mean(√d) over the K (PatchCore's, as src/scoring/knn.ts). `selfOffset` ≠ 0xffffffff skips
// bank entry selfOffset + q for query q (a slide scored against a bank built from itself).
// `radius` ≠ 0xffffffff skips every bank entry whose grid position (qpos/bpos: col | row << 16)
// lies within `radius` cells (Chebyshev) of the query's: a slide's cells scored against a sample of
// its own cells never match their own neighbourhood (an anomaly its own kind).

struct Params { n: u32, m: u32, d: u32, k: u32, chunk: u32, chunks: u32, selfOffset: u32, pad: u32, radius: u32, pad1: u32, pad2: u32, pad3: u32 }

const QT: u32 = 32u;
const BT: u32 = 64u;
const DS: u32 = 32u;
const KMAX: u32 = 8u;
const INF: f32 = 3.4e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> bank: array<f32>;
@group(0) @binding(3) var<storage, read_write> partD: array<f32>;
@group(0) @binding(4) var<storage, read_write> partI: array<u32>;
@group(0) @binding(8) var<storage, read> qpos: array<u32>;
@group(0) @binding(9) var<storage, read> bpos: array<u32>;

var<workgroup> qs: array<f32, QT * (DS + 1u)>;
var<workgroup> bs: array<f32, BT * (DS + 1u)>;

fn opaque(x: u32) -> u32 { return x + p.pad * {{OPAQUE}}u; }

@compute @workgroup_size(256)
fn knn_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let qi = t / 8u;
  let lane = t % 8u;
  let query = wg.x * QT + qi;
  let c = wg.y;
  let start = c * p.chunk;
  let end = min(start + p.chunk, p.m);
  var bestD: array<f32, KMAX>;
  var bestI: array<u32, KMAX>;
  for (var i = 0u; i < opaque(KMAX); i++) { bestD[i] = INF; bestI[i] = 0xffffffffu; }
  let skip = select(0xffffffffu, p.selfOffset + query, p.selfOffset != 0xffffffffu);
  let near = p.radius != 0xffffffffu;
  var qp = 0u;
  if (near) { qp = qpos[min(query, p.n - 1u)]; }
  for (var b0 = start; b0 < end; b0 += BT) {
    var acc: array<f32, 8>;
    for (var j = 0u; j < opaque(8u); j++) { acc[j] = 0.0; }
    for (var d0 = 0u; d0 < p.d; d0 += DS) {
      workgroupBarrier();
      for (var i = t; i < QT * DS; i += 256u) {
        let r = i / DS; let dd = i % DS;
        var v = 0.0;
        if (wg.x * QT + r < p.n && d0 + dd < p.d) { v = q[(wg.x * QT + r) * p.d + d0 + dd]; }
        qs[r * (DS + 1u) + dd] = v;
      }
      for (var i = t; i < BT * DS; i += 256u) {
        let r = i / DS; let dd = i % DS;
        var v = 0.0;
        if (b0 + r < end && d0 + dd < p.d) { v = bank[(b0 + r) * p.d + d0 + dd]; }
        bs[r * (DS + 1u) + dd] = v;
      }
      workgroupBarrier();
      for (var dd = 0u; dd < opaque(DS); dd++) {
        let qv = qs[qi * (DS + 1u) + dd];
        for (var j = 0u; j < opaque(8u); j++) {
          let diff = qv - bs[(lane + 8u * j) * (DS + 1u) + dd];
          acc[j] += diff * diff;
        }
      }
    }
    for (var j = 0u; j < opaque(8u); j++) {
      let bi = b0 + lane + 8u * j;
      var dist = acc[j];
      if (bi >= end || bi == skip) { dist = INF; }
      else if (near) {
        let bp = bpos[bi];
        let dc = abs(i32(qp & 0xffffu) - i32(bp & 0xffffu));
        let dr = abs(i32(qp >> 16u) - i32(bp >> 16u));
        if (u32(max(dc, dr)) <= p.radius) { dist = INF; }
      }
      // insertion into the sorted list of the first k
      if (dist < bestD[p.k - 1u]) {
        var pos = p.k - 1u;
        while (pos > 0u && bestD[pos - 1u] > dist) { bestD[pos] = bestD[pos - 1u]; bestI[pos] = bestI[pos - 1u]; pos--; }
        bestD[pos] = dist; bestI[pos] = bi;
      }
    }
  }
  if (query < p.n) {
    let base = ((query * p.chunks + c) * 8u + lane) * KMAX;
    for (var i = 0u; i < opaque(KMAX); i++) { partD[base + i] = bestD[i]; partI[base + i] = bestI[i]; }
  }
}

@group(0) @binding(5) var<storage, read_write> outD: array<f32>;
@group(0) @binding(6) var<storage, read_write> outI: array<u32>;
@group(0) @binding(7) var<storage, read_write> score: array<f32>;

@compute @workgroup_size(64)
fn knn_merge(@builtin(global_invocation_id) gid: vec3<u32>) {
  let query = gid.x + gid.y * 65535u * 64u;
  if (query >= p.n) { return; }
  var bestD: array<f32, KMAX>;
  var bestI: array<u32, KMAX>;
  for (var i = 0u; i < opaque(KMAX); i++) { bestD[i] = INF; bestI[i] = 0xffffffffu; }
  let lists = p.chunks * 8u;
  for (var l = 0u; l < lists; l++) {
    let base = (query * lists + l) * KMAX;
    for (var i = 0u; i < p.k; i++) {
      let dist = partD[base + i];
      if (dist >= bestD[p.k - 1u]) { break; }
      var pos = p.k - 1u;
      while (pos > 0u && bestD[pos - 1u] > dist) { bestD[pos] = bestD[pos - 1u]; bestI[pos] = bestI[pos - 1u]; pos--; }
      bestD[pos] = dist; bestI[pos] = partI[base + i];
    }
  }
  var s = 0.0;
  for (var i = 0u; i < p.k; i++) {
    outD[query * p.k + i] = bestD[i];
    outI[query * p.k + i] = bestI[i];
    s += sqrt(max(0.0, bestD[i]));
  }
  score[query] = s / f32(p.k);
}
