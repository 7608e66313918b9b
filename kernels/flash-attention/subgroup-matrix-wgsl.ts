/**
 * WGSL of the flash-attention fast path (design 3, "subgroup-private"): every subgroup owns R = MT·16
 * query rows and walks all keys on its own; nothing is shared between the subgroups of a workgroup.
 *
 * Per key tile of BC keys a subgroup computes S = Q·Kᵀ into fresh result matrices, with the Kᵀ
 * operands loaded straight from the storage buffer (column-major view of K's rows; L2 serves the
 * re-reads), stores S as f32 to its own slice of workgroup memory, runs the online softmax on its
 * invocations (LPR lanes per row), writes P as f16 to its slice, and multiplies P·V with V loaded
 * straight from storage. Two ways to keep O (the `accumulator` option):
 *  - 'matrix': O stays in result matrices across the key loop (as the GEMM's accumulators do); a
 *    row's reference max moves only when the row max grows by more than 2^8, and then O goes through
 *    workgroup memory once to be rescaled (a workgroup-uniform branch, rare after the first tiles);
 *  - 'private': P·V goes into fresh result matrices every tile, is stored, and each invocation adds
 *    its fixed column pairs into an O kept in private registers, rescaled exactly every tile.
 * Only the last, partial key tile stages its partial 16-key block through workgroup memory (zeros
 * past seqK): matrix loads from storage must stay inside the buffer.
 *
 * Every workgroup array is a multiple of 16 bytes long and there is no scalar workgroup variable, so
 * every matrix's base address is 16-byte aligned whatever order the driver lays the variables out in
 * (cooperative-matrix loads and stores need it; see NOTES.md on why design 2 failed).
 * The hazards are all inside one subgroup; WGSL has no subgroup barrier, so workgroupBarrier() orders
 * them (with one subgroup per workgroup it is exactly a subgroup barrier).
 */

import { attentionBindingsWgsl } from './attention-bindings-wgsl.ts';

/** Tiling shared by both subgroup-matrix designs (design 2 in flash-attention-wgsl.ts, design 3 here). */
export interface SubgroupMatrixTiling {
  headDim: number;
  /** Side of the square f16×f16→f32 subgroup matrix (M = N = K). */
  tile: number;
  subgroupSize: number;
  subgroupsPerWorkgroup: number;
  /** Query tiles of `tile` rows per subgroup. */
  mTilesPerSubgroup: number;
  keysPerTile: number;
}

/** Shape of the subgroup-matrix kernel. */
export interface SubgroupMatrixVariant extends SubgroupMatrixTiling {
  path: 'subgroup-matrix';
  /** Where O lives across the key loop (see the file comment). */
  accumulator: 'matrix' | 'private';
  /** Reload Q's matrices from workgroup memory every tile instead of keeping them in registers. @defaultValue false */
  reloadQ?: boolean;
}

interface Shape {
  d: number; t: number; sg: number; nsg: number; mt: number; r: number; bc: number;
  dt: number; nt: number; lpr: number; rpl: number; cpl: number;
  qs: number; ps: number; ss: number; os: number; hp: number; hk: number; hsub: number; fsub: number;
}

function shapeOf(v: SubgroupMatrixVariant): Shape {
  const { headDim: d, tile: t, subgroupSize: sg, subgroupsPerWorkgroup: nsg, mTilesPerSubgroup: mt, keysPerTile: bc } = v;
  const r = mt * t;
  const pow2 = (x: number) => Number.isInteger(x) && x > 0 && (x & (x - 1)) === 0;
  if (t !== 16 || d % t || bc % t || !pow2(sg) || !pow2(r) || !pow2(nsg) || bc % Math.max(1, sg / r) || d % (2 * Math.max(1, sg / r))) {
    throw new Error(`subgroup-matrix attention cannot tile D=${d} T=${t} SG=${sg} NSG=${nsg} R=${r} BC=${bc}`);
  }
  const lpr = Math.max(1, sg / r);
  const rpl = Math.max(1, r / sg);
  const qs = d + 8;
  const ps = bc + 8;
  const ss = Math.max(bc, d) + 4;
  const os = d + 4;
  // Q's slice also takes the staged partial K/V block when Q lives in registers (Q is loaded
  // before the key loop, the block is staged in its last tile)
  const qRegion = v.reloadQ ? r * qs : Math.max(r, 2 * t) * qs;
  const hp = qRegion;
  const hk = v.reloadQ ? qRegion + r * ps : 0;
  const hsub = qRegion + r * ps + (v.reloadQ ? 2 * t * qs : 0);
  const fsub = r * ss + (v.accumulator === 'private' ? r * os : 0);
  return { d, t, sg, nsg, mt, r, bc, dt: d / t, nt: bc / t, lpr, rpl, cpl: bc / lpr, qs, ps, ss, os, hp, hk, hsub, fsub };
}

/** Bytes of workgroup memory the kernel declares. */
export function subgroupMatrixWorkgroupBytes(v: SubgroupMatrixVariant): number {
  const s = shapeOf(v);
  return s.nsg * s.hsub * 2 + s.nsg * s.fsub * 4 + (v.accumulator === 'matrix' ? 16 : 0);
}

export function subgroupMatrixKey(v: SubgroupMatrixVariant): string {
  return `sgmat3-${v.accumulator === 'matrix' ? 'macc' : 'pacc'}${v.reloadQ ? '-rq' : ''}-d${v.headDim}-sg${v.subgroupSize}x${v.subgroupsPerWorkgroup}-mt${v.mTilesPerSubgroup}-bc${v.keysPerTile}`;
}

export function subgroupMatrixWgsl(v: SubgroupMatrixVariant): string {
  const s = shapeOf(v);
  const macc = v.accumulator === 'matrix';
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const Rt = 'subgroup_matrix_right<f16, 16, 16>';
  const A = 'subgroup_matrix_result<f32, 16, 16>';
  const out: string[] = [];
  const ind = (n: number) => ' '.repeat(n);

  const qLoads = (n: number) => {
    const x: string[] = [];
    for (let a = 0; a < s.mt; a++) for (let kd = 0; kd < s.dt; kd++) {
      x.push(`${ind(n)}let q_${a}_${kd} = subgroupMatrixLoad<${L}, row_major>(&hs, hb + ${a * 16 * s.qs + kd * 16}u, QS);`);
    }
    return x;
  };

  // One key tile. `tail`: the last tile, whose 16-key blocks past the last full one come from the
  // staged (zero-padded) copy.
  const tileBody = (tail: boolean, n0: number): string[] => {
    const x: string[] = [];
    const i = ind(n0);
    if (v.reloadQ) x.push(...qLoads(n0));
    const kLoad = (n: number, kd: number) => tail
      ? `loadKT(kBase, kb + ${n * 16}u, ${kd * 16}u, hb)`
      : `subgroupMatrixLoad<${Rt}, col_major>(&k, kBase + (kb + ${n * 16}u) * p.kRowStride + ${kd * 16}u, p.kRowStride)`;
    const vLoad = (n: number, dn: number) => tail
      ? `loadV(vBase, kb + ${n * 16}u, ${dn * 16}u, hb)`
      : `subgroupMatrixLoad<${Rt}, row_major>(&v, vBase + (kb + ${n * 16}u) * p.vRowStride + ${dn * 16}u, p.vRowStride)`;
    // S = Q·Kᵀ, one 16-key block at a time, each into a fresh result matrix
    for (let n = 0; n < s.nt; n++) {
      x.push(`${i}{`);
      for (let kd = 0; kd < s.dt; kd++) x.push(`${i}  let kr_${kd} = ${kLoad(n, kd)};`);
      for (let a = 0; a < s.mt; a++) {
        x.push(`${i}  var s_${a} = ${A}();`);
        for (let kd = 0; kd < s.dt; kd++) x.push(`${i}  s_${a} = subgroupMatrixMultiplyAccumulate(q_${a}_${kd}, kr_${kd}, s_${a});`);
        x.push(`${i}  subgroupMatrixStore<row_major>(&fs, fb + ${a * 16 * s.ss + n * 16}u, s_${a}, SS);`);
      }
      x.push(`${i}}`);
    }
    x.push(`${i}workgroupBarrier();`);
    x.push(`${i}softmaxTile(kb, b, lane, hb, fb, &mRow, &lRow, &alphaRow, ${macc ? 'slot' : '0u'});`);
    if (macc) {
      x.push(`${i}if (workgroupUniformLoad(&flags[slot]) != 0u) {`);
      for (let a = 0; a < s.mt; a++) for (let dn = 0; dn < s.dt; dn++) {
        x.push(`${i}  subgroupMatrixStore<row_major>(&fs, fb + ${a * 16 * s.ss + dn * 16}u, o_${a}_${dn}, SS);`);
      }
      x.push(`${i}  workgroupBarrier();`, `${i}  scaleO(lane, fb, alphaRow);`, `${i}  workgroupBarrier();`);
      for (let a = 0; a < s.mt; a++) for (let dn = 0; dn < s.dt; dn++) {
        x.push(`${i}  o_${a}_${dn} = subgroupMatrixLoad<${A}, row_major>(&fs, fb + ${a * 16 * s.ss + dn * 16}u, SS);`);
      }
      x.push(`${i}  workgroupBarrier();`, `${i}}`);
      // slot + 2 is next written two tiles on, after the next tile's barrier (no race with its readers)
      x.push(`${i}if (lane == 0u && sg == 0u) { flags[(slot + 2u) % 3u] = 0u; }`, `${i}slot = (slot + 1u) % 3u;`);
    } else {
      x.push(`${i}workgroupBarrier();`);
    }
    // O (+)= P·V
    for (let a = 0; a < s.mt; a++) for (let n = 0; n < s.nt; n++) {
      x.push(`${i}let p_${a}_${n} = subgroupMatrixLoad<${L}, row_major>(&hs, hb + HP + ${a * 16 * s.ps + n * 16}u, PS);`);
    }
    for (let dn = 0; dn < s.dt; dn++) {
      x.push(`${i}{`);
      for (let n = 0; n < s.nt; n++) x.push(`${i}  let vr_${n} = ${vLoad(n, dn)};`);
      for (let a = 0; a < s.mt; a++) {
        const acc = macc ? `o_${a}_${dn}` : `pv_${a}`;
        if (!macc) x.push(`${i}  var pv_${a} = ${A}();`);
        for (let n = 0; n < s.nt; n++) x.push(`${i}  ${acc} = subgroupMatrixMultiplyAccumulate(p_${a}_${n}, vr_${n}, ${acc});`);
        if (!macc) x.push(`${i}  subgroupMatrixStore<row_major>(&fs, fb + FO + ${a * 16 * s.os + dn * 16}u, pv_${a}, OS);`);
      }
      x.push(`${i}}`);
    }
    if (!macc) {
      x.push(`${i}workgroupBarrier();`);
      x.push(`${i}accumulateO(lane, fb, alphaRow, &oAcc);`);
    }
    return x;
  };

  out.push(`// Flash attention, subgroup-matrix path, design 3 (generated by subgroup-matrix-wgsl.ts: ${subgroupMatrixKey(v)}).
enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

${attentionBindingsWgsl('f16', 'u32')}

const D: u32 = ${s.d}u;
const SG: u32 = ${s.sg}u;
const NSG: u32 = ${s.nsg}u;
const R: u32 = ${s.r}u;           // query rows per subgroup
const BC: u32 = ${s.bc}u;         // keys per tile
const LPR: u32 = ${s.lpr}u;       // lanes per row in the softmax
const RPL: u32 = ${s.rpl}u;       // rows per lane
const CPL: u32 = ${s.cpl}u;       // score columns per lane
const CPP: u32 = ${s.d / 2 / s.lpr}u; // O column pairs per lane
// Row strides (elements) of the per-subgroup slices; each a multiple of 16 bytes (matrix rows must
// start 16-byte aligned) and not of 128 bytes (bank conflicts).
const QS: u32 = ${s.qs}u;         // Q and the staged K/V block, f16
const PS: u32 = ${s.ps}u;         // P, f16
const SS: u32 = ${s.ss}u;         // S (and O on its way out), f32
const OS: u32 = ${s.os}u;         // P·V of the tile ('private' accumulator), f32
const HP: u32 = ${s.hp}u;   // offsets inside a subgroup's f16 slice: P, staged K block, staged V block
const HK: u32 = ${s.hk}u;
const HV: u32 = ${s.hk + 16 * s.qs}u;
const HSUB: u32 = ${s.hsub}u;
const FO: u32 = ${s.r * s.ss}u;   // offset of the P·V block inside a subgroup's f32 slice
const FSUB: u32 = ${s.fsub}u;
const MASKED: f32 = -1.0e30;
const RESCALE_LOG2: f32 = ${macc ? '8.0' : '0.0'};

var<workgroup> hs: array<f16, ${s.nsg * s.hsub}>;
var<workgroup> fs: array<f32, ${s.nsg * s.fsub}>;
${macc ? 'var<workgroup> flags: array<u32, 4>;   // rescale requests, three rotating slots (16 bytes)\n' : ''}
// Kᵀ / V operand of key block key0 (16 keys): from storage when all 16 keys exist, else the staged copy.
fn loadKT(kBase: u32, key0: u32, d0: u32, hb: u32) -> ${Rt} {
  if (key0 + 16u <= p.seqK) { return subgroupMatrixLoad<${Rt}, col_major>(&k, kBase + key0 * p.kRowStride + d0, p.kRowStride); }
  return subgroupMatrixLoad<${Rt}, col_major>(&hs, hb + HK + d0, QS);
}
fn loadV(vBase: u32, key0: u32, d0: u32, hb: u32) -> ${Rt} {
  if (key0 + 16u <= p.seqK) { return subgroupMatrixLoad<${Rt}, row_major>(&v, vBase + key0 * p.vRowStride + d0, p.vRowStride); }
  return subgroupMatrixLoad<${Rt}, row_major>(&hs, hb + HV + d0, QS);
}

// Online softmax of this subgroup's S slice (log2 units): P → the P slice, running max m, sum l and
// this tile's factor alpha per row. With RESCALE_LOG2 > 0 the reference max moves lazily and a row
// whose O must shrink raises flags[slot].
fn softmaxTile(kb: u32, b: u32, lane: u32, hb: u32, fb: u32, mRow: ptr<function, array<f32, RPL>>,
               lRow: ptr<function, array<f32, RPL>>, alphaRow: ptr<function, array<f32, RPL>>, slot: u32) {
  let part = lane % LPR;
  var keep: array<bool, CPL>;
  for (var jj = 0u; jj < CPL; jj++) {
    let key = kb + part + jj * LPR;
    var ok = key < p.seqK;
    if (ok && p.hasMask != 0u) { ok = mask[p.maskOffset + b * p.seqK + key] != 0u; }
    keep[jj] = ok;
  }
  var sv: array<f32, CPL>;
  for (var rr = 0u; rr < RPL; rr++) {
    let row = lane / LPR + rr * (SG / LPR);
    let sBase = fb + row * SS;
    var mx = MASKED;
    for (var jj = 0u; jj < CPL; jj++) {
      let x = select(MASKED, fs[sBase + part + jj * LPR] * p.scaleLog2, keep[jj]);
      sv[jj] = x;
      mx = max(mx, x);
    }
    for (var off = 1u; off < LPR; off <<= 1u) { mx = max(mx, subgroupShuffleXor(mx, off)); }
    let mRef = (*mRow)[rr];
    let newRef = select(mRef, mx, mx > mRef + RESCALE_LOG2);
    let alpha = exp2(mRef - newRef);
    var sum = 0.0;
    let pBase = hb + HP + row * PS;
    for (var jj = 0u; jj < CPL; jj++) {
      let pv = select(0.0, exp2(sv[jj] - newRef), keep[jj]);
      sum += pv;
      hs[pBase + part + jj * LPR] = f16(pv);
    }
    for (var off = 1u; off < LPR; off <<= 1u) { sum += subgroupShuffleXor(sum, off); }
${macc ? '    if (alpha < 1.0 && (*lRow)[rr] > 0.0) { flags[slot] = 1u; }\n' : ''}    (*lRow)[rr] = (*lRow)[rr] * alpha + sum;
    (*mRow)[rr] = newRef;
    (*alphaRow)[rr] = alpha;
  }
}
`);
  if (macc) {
    out.push(`// O rows of this subgroup (in the S slice) times their alpha.
fn scaleO(lane: u32, fb: u32, alphaRow: array<f32, RPL>) {
  for (var rr = 0u; rr < RPL; rr++) {
    let base = fb + (lane / LPR + rr * (SG / LPR)) * SS;
    for (var c = lane % LPR; c < D; c += LPR) { fs[base + c] *= alphaRow[rr]; }
  }
}
`);
  } else {
    out.push(`// O (private: column pairs part + j·LPR of this lane's rows) = alpha·O + this tile's P·V.
fn accumulateO(lane: u32, fb: u32, alphaRow: array<f32, RPL>, oAcc: ptr<function, array<vec2<f32>, RPL * CPP>>) {
  for (var rr = 0u; rr < RPL; rr++) {
    let base = fb + FO + (lane / LPR + rr * (SG / LPR)) * OS;
    for (var j = 0u; j < CPP; j++) {
      let c = 2u * (lane % LPR + j * LPR);
      (*oAcc)[rr * CPP + j] = (*oAcc)[rr * CPP + j] * alphaRow[rr] + vec2<f32>(fs[base + c], fs[base + c + 1u]);
    }
  }
}
`);
  }
  out.push(`@compute @workgroup_size(${s.nsg * s.sg})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_id) sg: u32) {
  let b = wg.z;
  let h = wg.y;
  let row0 = (wg.x * NSG + sg) * R;   // this subgroup's first query row
  // subgroup_id (not lid / SG), so that WGSL knows the matrix offsets are subgroup-uniform
  let hb = sg * HSUB;
  let fb = sg * FSUB;
  let kBase = p.kOffset + b * p.seqK * p.kRowStride + h * D;
  let vBase = p.vOffset + b * p.seqK * p.vRowStride + h * D;
${macc ? '  if (lid == 0u) { flags[0] = 0u; flags[1] = 0u; flags[2] = 0u; }\n  var slot = 0u;\n' : ''}
  // Q rows → the Q slice (zeros past seqQ)
  for (var i = lane; i < R * D; i += SG) {
    let row = row0 + i / D;
    var x = f16(0.0);
    if (row < p.seqQ) { x = q[p.qOffset + (b * p.seqQ + row) * p.qRowStride + h * D + i % D]; }
    hs[hb + (i / D) * QS + i % D] = x;
  }
  workgroupBarrier();
${v.reloadQ ? '' : qLoads(2).join('\n')}
  var mRow: array<f32, RPL>;
  var lRow: array<f32, RPL>;
  var alphaRow: array<f32, RPL>;
  for (var rr = 0u; rr < RPL; rr++) { mRow[rr] = MASKED; lRow[rr] = 0.0; alphaRow[rr] = 1.0; }
`);
  if (macc) {
    for (let a = 0; a < s.mt; a++) for (let dn = 0; dn < s.dt; dn++) out.push(`  var o_${a}_${dn} = ${A}();`);
  } else {
    out.push('  var oAcc: array<vec2<f32>, RPL * CPP>;');
  }
  out.push('  var kb = 0u;', '  for (; kb + BC <= p.seqK; kb += BC) {', ...tileBody(false, 4), '  }');
  out.push(`  if (kb < p.seqK) {
    // the partial 16-key block → the staged K and V slices (zeros past seqK)
    let kp = (p.seqK / 16u) * 16u;
    for (var i = lane; i < 16u * D; i += SG) {
      let key = kp + i / D;
      var kx = f16(0.0);
      var vx = f16(0.0);
      if (key < p.seqK) { kx = k[kBase + key * p.kRowStride + i % D]; vx = v[vBase + key * p.vRowStride + i % D]; }
      hs[hb + HK + (i / D) * QS + i % D] = kx;
      hs[hb + HV + (i / D) * QS + i % D] = vx;
    }
    workgroupBarrier();`, ...tileBody(true, 4), '  }');
  // output: O / l, f16 pairs; rows past seqQ are not written, fully masked rows are zeros
  if (macc) {
    out.push('  workgroupBarrier();');
    for (let a = 0; a < s.mt; a++) for (let dn = 0; dn < s.dt; dn++) {
      out.push(`  subgroupMatrixStore<row_major>(&fs, fb + ${a * 16 * s.ss + dn * 16}u, o_${a}_${dn}, SS);`);
    }
    out.push('  workgroupBarrier();');
  }
  out.push(`  for (var rr = 0u; rr < RPL; rr++) {
    let row = lane / LPR + rr * (SG / LPR);
    let gRow = row0 + row;
    if (gRow < p.seqQ) {
      let inv = select(0.0, 1.0 / lRow[rr], lRow[rr] > 0.0);
      let outBase = (p.oOffset + (b * p.seqQ + gRow) * p.oRowStride + h * D) / 2u;
      for (var j = 0u; j < CPP; j++) {
        let cp = lane % LPR + j * LPR;
        ${macc ? 'let x = vec2<f32>(fs[fb + row * SS + 2u * cp], fs[fb + row * SS + 2u * cp + 1u]);' : 'let x = oAcc[rr * CPP + j];'}
        o[outBase + cp] = pack2x16float(x * inv);
      }
    }
  }
}
`);
  return out.join('\n');
}
