/**
 * Generates the WGSL of both flash-attention paths from the .wgsl templates beside this file:
 * constants are substituted, and for the subgroup-matrix path the matrix code is unrolled here
 * (every matrix lives in a named `let`/`var`, so no matrix array is ever indexed at run time).
 * With `emulate`, the matrix builtins become plain WGSL functions over `array<f32, T*T>` that every
 * invocation computes in full: slow, but it runs the fast path's exact indexing, softmax, masking
 * and rescaling on adapters without the feature (lavapipe in CI).
 */
import { readFileSync } from 'node:fs';
import { attentionBindingsWgsl } from './attention-bindings-wgsl.ts';
import { subgroupMatrixKey, subgroupMatrixWgsl, subgroupMatrixWorkgroupBytes, type SubgroupMatrixTiling, type SubgroupMatrixVariant } from './subgroup-matrix-wgsl.ts';

const here = new URL('.', import.meta.url);
const templates = new Map<string, string>();
function template(name: string): string {
  let t = templates.get(name);
  if (t === undefined) {
    t = readFileSync(new URL(name, here), 'utf8');
    templates.set(name, t);
  }
  return t;
}

function fill(text: string, values: Record<string, string | number>): string {
  const out = text.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`flash-attention template: no value for {{${name}}}`);
    return String(values[name]);
  });
  return out;
}

/** Shape of the portable kernel. */
export interface PortableVariant {
  path: 'portable';
  headDim: number;
  precision: 'f16' | 'f32';
  /** Query rows (and invocations) per workgroup. */
  rowsPerWorkgroup: number;
  keysPerTile: number;
  /** Run-time loop bounds (for CPU adapters, whose compilers unroll everything). @defaultValue false */
  opaqueLoops?: boolean;
}

/**
 * Shape of design 2 of the subgroup-matrix kernel (K/V staged in workgroup memory shared by all
 * subgroups). It disagrees with the reference on the H200 unless `alignedFlag` pads its one scalar
 * workgroup variable to 16 bytes (NOTES.md); {@link chooseVariant} always sets it.
 */
export interface StagedSubgroupMatrixVariant extends SubgroupMatrixTiling {
  path: 'subgroup-matrix-v2';
  /** Replace the matrix builtins by plain WGSL (testing without the feature). */
  emulate: boolean;
  /** Run-time loop bounds (for CPU adapters). @defaultValue false */
  opaqueLoops?: boolean;
  /**
   * Layout probe (bit 1 left, 2 right, 4 result): swaps row_major and col_major for that kind of
   * matrix, for drivers whose cooperative-matrix layouts disagree with ours. @defaultValue 0
   */
  flip?: number;
  /** Use the older call form `subgroupMatrixLoad<T>(&a, offset, colMajor, stride)`. @defaultValue false */
  legacySyntax?: boolean;
  /**
   * Declare the rescale flag as array<u32, 4> (16 bytes) instead of a u32, so that every workgroup
   * variable is a multiple of 16 bytes whatever order the driver lays them out in. @defaultValue false
   */
  alignedFlag?: boolean;
  /**
   * Load the next K/V tile into registers while this one is computed, and write them to workgroup
   * memory after the tile's last barrier (hides the L2 latency of the staging). @defaultValue false
   */
  prefetch?: boolean;
  /**
   * With prefetch: stage K right after the S barrier and V after the P·V products instead of both at
   * the top of the tile, which drops one workgroup barrier per tile (4 instead of 5, counting the two
   * of workgroupUniformLoad). @defaultValue false
   */
  splitStage?: boolean;
  /**
   * With prefetch: stage through 4-byte global loads (two halves per invocation and store) instead of
   * 16-byte ones, so that the f16 stores of a subgroup hit 32 different banks (16-byte loads leave
   * 8 banks for 32 lanes: 4-way conflicts). @defaultValue false
   */
  narrowStage?: boolean;
  /**
   * Read each score twice from workgroup memory (for the row max, then for P) instead of keeping the
   * tile's scores in RPL·CPL private registers between the two passes: fewer registers per
   * invocation (more workgroups per SM if registers bound them), more workgroup reads. @defaultValue false
   */
  rereadS?: boolean;
  /**
   * Give P's scratch the stride BC + 8 instead of max(BC, D) + 8 and stage Q through it in chunks
   * of min(BC, D) columns: 8 KB less workgroup memory at D = 64 (46 → 38 KB for NSG 8), and NSG 8
   * fits at D = 128. @defaultValue false
   */
  compactP?: boolean;
  /**
   * With prefetch: two halves of K/V (and mask) staging, so that tile t+1 is written into one half
   * right after tile t's S barrier while tile t is read from the other. Per tile this leaves the S
   * barrier and the P barrier(s), instead of two more around the staging. The rescale flag rotates
   * over two slots, cleared one tile ahead. Needs compactP at D = 64 with 8 subgroups (48 KiB).
   * @defaultValue false
   */
  doubleBuffer?: boolean;
  /**
   * Read the lazy-rescale flag with a plain load after a workgroupBarrier instead of
   * workgroupUniformLoad (which Tint lowers to barrier, load, barrier): one barrier less per tile.
   * The value is uniform at run time (everyone reads it after the barrier, nobody writes it until the
   * next tile's barrier), but WGSL's uniformity analysis cannot see that, so the module enables
   * `chromium_disable_uniformity_analysis` (an allow_unsafe_apis extension). @defaultValue false
   */
  plainFlagRead?: boolean;
  /**
   * A second copy of the softmax for full key tiles without a mask (a uniform branch): no mask
   * flags read, no selects, about a quarter fewer instructions per score. @defaultValue false
   */
  fullTileFast?: boolean;
  /**
   * Scale Q by scale·log2(e) while staging it (rounded once to f16), so that S comes out of the
   * product in log2 units and the softmax saves a multiply per score. @defaultValue false
   */
  prescaleQ?: boolean;
}

export type { SubgroupMatrixVariant };
export type AttentionVariant = PortableVariant | SubgroupMatrixVariant | StagedSubgroupMatrixVariant;

/** Query rows one workgroup covers. */
export function rowsPerWorkgroup(v: AttentionVariant): number {
  return v.path === 'portable' ? v.rowsPerWorkgroup : v.subgroupsPerWorkgroup * v.mTilesPerSubgroup * v.tile;
}

/** Invocations per workgroup. */
export function workgroupInvocations(v: AttentionVariant): number {
  return v.path === 'portable' ? v.rowsPerWorkgroup : v.subgroupsPerWorkgroup * v.subgroupSize;
}

/** Bytes of workgroup memory the variant declares. */
export function workgroupBytes(v: AttentionVariant): number {
  if (v.path === 'portable') return 2 * v.keysPerTile * v.headDim * 4 + v.keysPerTile * 4;
  if (v.path === 'subgroup-matrix') return subgroupMatrixWorkgroupBytes(v);
  const br = rowsPerWorkgroup(v);
  const ks = v.headDim + 8;
  const pst = (v.compactP ? v.keysPerTile : Math.max(v.keysPerTile, v.headDim)) + 8;
  const kvb = v.doubleBuffer ? 2 : 1;
  return kvb * (2 * v.keysPerTile * ks * 2 + v.keysPerTile * 4) + br * (v.keysPerTile + 4) * 4 + br * pst * 2 + (v.alignedFlag || v.doubleBuffer ? 16 : 4);
}

/** A stable key for pipeline caches and benchmark tables. */
export function variantKey(v: AttentionVariant): string {
  if (v.path === 'subgroup-matrix') return subgroupMatrixKey(v);
  const o = v.opaqueLoops ? '-opaque' : '';
  if (v.path === 'portable') return `portable-${v.precision}-d${v.headDim}-br${v.rowsPerWorkgroup}-bc${v.keysPerTile}${o}`;
  return `sgmat2${v.alignedFlag ? '-aligned' : ''}${v.emulate ? '-emu' : ''}${v.flip ? `-flip${v.flip}` : ''}${v.legacySyntax ? '-legacy' : ''}${v.prefetch ? '-pf' : ''}${v.prefetch && v.splitStage ? '-split' : ''}${v.prefetch && v.narrowStage ? '-u32' : ''}${v.rereadS ? '-rs' : ''}${v.compactP ? '-cp' : ''}${v.doubleBuffer ? '-db' : ''}${v.plainFlagRead ? '-nu' : ''}${v.fullTileFast ? '-ff' : ''}${v.prescaleQ ? '-sq' : ''}-d${v.headDim}-t${v.tile}-sg${v.subgroupSize}x${v.subgroupsPerWorkgroup}-mt${v.mTilesPerSubgroup}-bc${v.keysPerTile}${o}`;
}

/** WGSL of a variant; throws on shapes the templates cannot express. */
export function attentionWgsl(v: AttentionVariant): string {
  if (v.path === 'portable') return portableWgsl(v);
  return v.path === 'subgroup-matrix' ? subgroupMatrixWgsl(v) : stagedWgsl(v);
}

function portableWgsl(v: PortableVariant): string {
  if (v.headDim % 4 !== 0) throw new Error(`portable attention needs a head size divisible by 4, got ${v.headDim}`);
  const f16 = v.precision === 'f16';
  return fill(template('flash-attention.portable.wgsl'), {
    BINDINGS: attentionBindingsWgsl(f16 ? 'vec2<u32>' : 'vec4<f32>', f16 ? 'vec2<u32>' : 'vec4<f32>'),
    D: v.headDim, BR: v.rowsPerWorkgroup, BC: v.keysPerTile, OPAQUE: v.opaqueLoops ? 1 : 0,
    VEC: f16 ? 'vec2<u32>' : 'vec4<f32>',
    LOAD4: f16 ? 'return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));' : 'return w;',
    STORE4: f16 ? 'return vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw));' : 'return x;',
  });
}

interface MatrixOps {
  left: string; right: string; result: string; zero: string;
  load(type: 'left' | 'right' | 'result', arr: string, off: string, colMajor: boolean, stride: string): string;
  store(arr: string, off: string, m: string, stride: string): string;
  mma(a: string, b: string, c: string): string;
}

function realOps(t: number, flip: number, legacy: boolean): MatrixOps {
  const types = { left: `subgroup_matrix_left<f16, ${t}, ${t}>`, right: `subgroup_matrix_right<f16, ${t}, ${t}>`, result: `subgroup_matrix_result<f32, ${t}, ${t}>` };
  return {
    ...types,
    zero: `${types.result}()`,
    load: (type, arr, off, cm, stride) => {
      const bit = type === 'left' ? 1 : type === 'right' ? 2 : 4;
      const col = cm !== Boolean(flip & bit);
      return legacy
        ? `subgroupMatrixLoad<${types[type]}>(&${arr}, ${off}, ${col}, ${stride})`
        : `subgroupMatrixLoad<${types[type]}, ${col ? 'col_major' : 'row_major'}>(&${arr}, ${off}, ${stride})`;
    },
    store: (arr, off, m, stride) => legacy
      ? `subgroupMatrixStore(&${arr}, ${off}, ${m}, ${Boolean(flip & 4)}, ${stride});`
      : `subgroupMatrixStore<${flip & 4 ? 'col_major' : 'row_major'}>(&${arr}, ${off}, ${m}, ${stride});`,
    mma: (a, b, c) => `subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c})`,
  };
}

function emulatedOps(t: number): MatrixOps {
  const m = `array<f32, ${t * t}>`;
  return {
    left: m, right: m, result: m, zero: `${m}()`,
    load: (_type, arr, off, cm, stride) => `emuLoad_${arr}(${off}, ${cm}, ${stride})`,
    store: (arr, off, mat, stride) => `emuStore_${arr}(${off}, ${mat}, ${stride});`,
    mma: (a, b, c) => `emuMma(${a}, ${b}, ${c})`,
  };
}

function emulationFunctions(t: number): string {
  const m = `array<f32, ${t * t}>`;
  const load = (arr: string) => `fn emuLoad_${arr}(off: u32, colMajor: bool, stride: u32) -> ${m} {
  var r: ${m};
  for (var i = 0u; i < opaque(${t}u); i++) { for (var j = 0u; j < opaque(${t}u); j++) {
    r[i * ${t}u + j] = f32(${arr}[off + select(i * stride + j, j * stride + i, colMajor)]);
  } }
  return r;
}`;
  return [
    '// Emulated subgroup matrices: each invocation holds and computes the whole matrix.',
    load('kT'), load('vT'), load('pS'), load('sS'),
    `fn emuStore_sS(off: u32, mat: ${m}, stride: u32) {
  for (var i = 0u; i < opaque(${t}u); i++) { for (var j = 0u; j < opaque(${t}u); j++) { sS[off + i * stride + j] = mat[i * ${t}u + j]; } }
}`,
    `fn emuMma(a: ${m}, b: ${m}, c: ${m}) -> ${m} {
  var r = c;
  for (var i = 0u; i < opaque(${t}u); i++) { for (var j = 0u; j < opaque(${t}u); j++) {
    var s = 0.0;
    for (var x = 0u; x < opaque(${t}u); x++) { s += a[i * ${t}u + x] * b[x * ${t}u + j]; }
    r[i * ${t}u + j] += s;
  } }
  return r;
}`,
  ].join('\n');
}

function stagedWgsl(v: StagedSubgroupMatrixVariant): string {
  const { headDim: d, tile: t, subgroupSize: sg, mTilesPerSubgroup: mt, keysPerTile: bc } = v;
  const r = mt * t;
  const pow2 = (x: number) => x > 0 && (x & (x - 1)) === 0;
  if (d % t || d % 8 || bc % t || !pow2(sg) || !pow2(r) || bc % Math.max(1, sg / r) || (v.prefetch && v.subgroupsPerWorkgroup * sg < bc) || (v.doubleBuffer && !v.prefetch)) {
    throw new Error(`subgroup-matrix attention cannot tile D=${d} T=${t} SG=${sg} R=${r} BC=${bc}`);
  }
  const ops = v.emulate ? emulatedOps(t) : realOps(t, v.flip ?? 0, v.legacySyntax ?? false);
  const db = v.doubleBuffer ?? false;
  // offset of this tile's half of the K/V staging (double buffering)
  const kvo = db ? 'kvo + ' : '';
  const dt = d / t;
  const nt = bc / t;
  const lines = (xs: string[], indent: string) => xs.map((x) => indent + x).join('\n');

  // Q staged through pS in chunks of qw columns (all of D unless compactP)
  const qw = v.compactP ? Math.min(bc, d) : d;
  if (d % qw) throw new Error(`subgroup-matrix attention cannot stage Q of D=${d} in chunks of ${qw}`);
  const narrowQ = (v.prefetch ?? false) && (v.narrowStage ?? false);
  const loadQ: string[] = [];
  for (let c = 0; c < d / qw; c++) {
    if (c > 0) loadQ.push('workgroupBarrier();');
    const col = `${c * qw}u + (i % ${qw / 8}u) * 8u`;
    const src = `(p.qOffset + (b * p.seqQ + row) * p.qRowStride + h * D + ${col})`;
    loadQ.push(
      `for (var i = lid; i < BR * ${qw / 8}u; i += WG) {`,
      `  let r = i / ${qw / 8}u;`,
      '  let row = q0 + r;',
      '  var w = vec4<u32>(0u);',
      `  if (row < p.seqQ) { w = ${narrowQ ? `loadQ8(${src} / 2u)` : `q[${src} / 8u]`}; }`,
      `  put8P(r * PST + (i % ${qw / 8}u) * 8u, ${v.prescaleQ ? 'scaled8(w)' : 'w'});`,
      '}',
      'workgroupBarrier();',
    );
    for (let a = 0; a < mt; a++) for (let kd = (c * qw) / t; kd < ((c + 1) * qw) / t; kd++) {
      loadQ.push(`let q_${a}_${kd} = ${ops.load('left', 'pS', `(sgRow0 + ${a * t}u) * PST + ${kd * t - c * qw}u`, false, 'PST')};`);
    }
  }
  const declareO: string[] = [];
  for (let a = 0; a < mt; a++) for (let dn = 0; dn < dt; dn++) declareO.push(`var o_${a}_${dn} = ${ops.zero};`);

  // S = Q·Kᵀ: Kᵀ's tile (d rows, key columns) is K's tile read column-major
  const qk: string[] = [];
  for (let n = 0; n < nt; n++) {
    qk.push('{');
    for (let kd = 0; kd < dt; kd++) qk.push(`  let kr_${kd} = ${ops.load('right', 'kT', `${kvo}${n * t}u * KS + ${kd * t}u`, true, 'KS')};`);
    for (let a = 0; a < mt; a++) {
      qk.push(`  var s_${a} = ${ops.zero};`);
      for (let kd = 0; kd < dt; kd++) qk.push(`  s_${a} = ${ops.mma(`q_${a}_${kd}`, `kr_${kd}`, `s_${a}`)};`);
      qk.push(`  ${ops.store('sS', `(sgRow0 + ${a * t}u) * SS + ${n * t}u`, `s_${a}`, 'SS')}`);
    }
    qk.push('}');
  }

  // O += P·V
  const pv: string[] = [];
  for (let a = 0; a < mt; a++) for (let n = 0; n < nt; n++) {
    pv.push(`let p_${a}_${n} = ${ops.load('left', 'pS', `(sgRow0 + ${a * t}u) * PST + ${n * t}u`, false, 'PST')};`);
  }
  for (let dn = 0; dn < dt; dn++) {
    pv.push('{');
    for (let n = 0; n < nt; n++) pv.push(`  let vr_${n} = ${ops.load('right', 'vT', `${kvo}${n * t}u * KS + ${dn * t}u`, false, 'KS')};`);
    for (let a = 0; a < mt; a++) for (let n = 0; n < nt; n++) pv.push(`  o_${a}_${dn} = ${ops.mma(`p_${a}_${n}`, `vr_${n}`, `o_${a}_${dn}`)};`);
    pv.push('}');
  }

  // O passes through the score scratch in chunks of W head columns (W = min(BC, D))
  const w = Math.min(bc, d);
  const chunks = d / w;
  const tilesPerChunk = w / t;
  const storeChunk = (c: number) => {
    const out: string[] = [];
    for (let a = 0; a < mt; a++) for (let x = 0; x < tilesPerChunk; x++) {
      out.push(ops.store('sS', `(sgRow0 + ${a * t}u) * SS + ${x * t}u`, `o_${a}_${c * tilesPerChunk + x}`, 'SS'));
    }
    return out;
  };
  const rescale: string[] = [];
  const output: string[] = [];
  for (let c = 0; c < chunks; c++) {
    rescale.push(...storeChunk(c), 'workgroupBarrier();', `scaleChunk(sgRow0, lane, part, ${w}u, alphaRow);`, 'workgroupBarrier();');
    for (let a = 0; a < mt; a++) for (let x = 0; x < tilesPerChunk; x++) {
      rescale.push(`o_${a}_${c * tilesPerChunk + x} = ${ops.load('result', 'sS', `(sgRow0 + ${a * t}u) * SS + ${x * t}u`, false, 'SS')};`);
    }
    if (c + 1 < chunks) rescale.push('workgroupBarrier();');
    output.push(...storeChunk(c), 'workgroupBarrier();', `writeChunk(b, h, q0, sgRow0, lane, part, ${c * w}u, ${w}u, lRow);`);
    if (c + 1 < chunks) output.push('workgroupBarrier();');
  }

  const enables = ['enable f16;', 'enable subgroups;'];
  if (!v.emulate) enables.push('enable chromium_experimental_subgroup_matrix;');
  if (v.plainFlagRead) enables.push('enable chromium_disable_uniformity_analysis;');
  const stage = [
    'for (var i = lid; i < BC * D8; i += WG) {',
    '  let j = i / D8;',
    '  var kw = vec4<u32>(0u);',
    '  var vw = vec4<u32>(0u);',
    '  if (kb + j < p.seqK) {',
    '    let tok = b * p.seqK + kb + j;',
    '    kw = k[(p.kOffset + tok * p.kRowStride + h * D) / 8u + i % D8];',
    '    vw = v[(p.vOffset + tok * p.vRowStride + h * D) / 8u + i % D8];',
    '  }',
    '  put8K(j * KS + (i % D8) * 8u, kw);',
    '  put8V(j * KS + (i % D8) * 8u, vw);',
    '}',
    'for (var j = lid; j < BC; j += WG) { keep[j] = keepOf(b, kb + j); }',
  ];
  const reset = 'if (lid == 0u) { rescaleFlag = 0u; }';
  const pf = v.prefetch ?? false;
  const split = pf && (v.splitStage ?? false);
  const narrow = narrowQ;
  // where the K/V tile is written to workgroup memory and the next one fetched (see PREFETCH_FNS)
  const pipeline = db ? {
    prologue: ['fetchK(b, h, 0u, lid);', 'fetchV(b, h, 0u, lid);', 'stashK(lid, 0u);', 'stashV(lid, 0u, 0u);',
      'if (lid == 0u) { rescaleFlags[0] = 0u; rescaleFlags[1] = 0u; }', 'workgroupBarrier();',
      'if (BC < p.seqK) { fetchK(b, h, BC, lid); fetchV(b, h, BC, lid); }'],
    top: [],
    afterQk: [
      '// every subgroup is past tile t-1 (its P·V too): tile t+1 goes into that half, and the flag',
      '// slot tile t-1 read is cleared for tile t+1',
      'if (kb + BC < p.seqK) { stashK(lid, BC * KS - kvo); stashV(lid, BC * KS - kvo, BC - ko); }',
      'if (kb + 2u * BC < p.seqK) { fetchK(b, h, kb + 2u * BC, lid); fetchV(b, h, kb + 2u * BC, lid); }',
      'if (lid == 0u) { rescaleFlags[1u - slot] = 0u; }'],
    bottom: [],
  } : split ? {
    prologue: ['fetchK(b, h, 0u, lid);', 'fetchV(b, h, 0u, lid);', 'stashK(lid, 0u);', 'stashV(lid, 0u, 0u);', reset, 'workgroupBarrier();',
      'if (BC < p.seqK) { fetchK(b, h, BC, lid); fetchV(b, h, BC, lid); }'],
    top: [],
    afterQk: ['// everyone is past this tile\'s S = Q·Kᵀ: K of the next tile replaces it', 'stashK(lid, 0u);', 'if (kb + 2u * BC < p.seqK) { fetchK(b, h, kb + 2u * BC, lid); }'],
    bottom: ['workgroupBarrier();', 'stashV(lid, 0u, 0u);', reset, 'if (kb + 2u * BC < p.seqK) { fetchV(b, h, kb + 2u * BC, lid); }'],
  } : pf ? {
    prologue: ['fetchK(b, h, 0u, lid);', 'fetchV(b, h, 0u, lid);'],
    top: ['workgroupBarrier();', 'stashK(lid, 0u);', 'stashV(lid, 0u, 0u);', reset, 'workgroupBarrier();', 'if (kb + BC < p.seqK) { fetchK(b, h, kb + BC, lid); fetchV(b, h, kb + BC, lid); }'],
    afterQk: [], bottom: [],
  } : { prologue: [], top: ['workgroupBarrier();', ...stage, reset, 'workgroupBarrier();'], afterQk: [], bottom: [] };

  const wgsl = fill(template('flash-attention.subgroup-matrix-v2.wgsl'), {
    ENABLES: enables.join('\n'), BINDINGS: attentionBindingsWgsl(narrow ? 'u32' : 'vec4<u32>', 'u32'),
    OPAQUE: v.opaqueLoops ? 1 : 0, D: d, T: t, SG: sg, NSG: v.subgroupsPerWorkgroup, R: r, BC: bc,
    LPR: Math.max(1, sg / r), RPL: Math.max(1, r / sg), PST: (v.compactP ? bc : Math.max(bc, d)) + 8,
    EMU_FUNCS: v.emulate ? emulationFunctions(t) : '',
    PREFETCH_FNS: pf ? prefetchFunctions(narrow) : '',
    SV_DECL: v.rereadS ? '' : '  var sv: array<f32, RPL * CPL>;',
    SOFTMAX: v.fullTileFast
      ? ['    if (p.hasMask == 0u && kb + BC <= p.seqK) {', softmaxWgsl(v, false, '      '), '    } else {', softmaxWgsl(v, true, '      '), '    }'].join('\n')
      : softmaxWgsl(v, true, '    '),
    SCALED8: v.prescaleQ ? `// Eight Q halves times scale·log2(e), computed in f32 and rounded once.
fn scaled8(w: vec4<u32>) -> vec4<u32> {
  let s = p.scaleLog2;
  return vec4<u32>(pack2x16float(unpack2x16float(w.x) * s), pack2x16float(unpack2x16float(w.y) * s),
                   pack2x16float(unpack2x16float(w.z) * s), pack2x16float(unpack2x16float(w.w) * s));
}` : '',
    KVB: db ? 2 : 1,
    FLAG_DECL: db ? 'var<workgroup> rescaleFlags: array<u32, 4>;' : 'var<workgroup> rescaleFlag: u32;',
    RESCALE_READ: v.plainFlagRead
      ? `    // also the barrier that makes P visible to the matrix loads\n    workgroupBarrier();\n    let rescale = ${db ? 'rescaleFlags[slot]' : 'rescaleFlag'};`
      : `    // also the barrier that makes P visible to the matrix loads\n    let rescale = workgroupUniformLoad(&${db ? 'rescaleFlags[slot]' : 'rescaleFlag'});`,
    PROLOGUE: lines(pipeline.prologue, '  '),
    TOP: lines([...(db ? ['let kvo = ((kb / BC) % 2u) * BC * KS;', 'let ko = ((kb / BC) % 2u) * BC;', 'let slot = (kb / BC) % 2u;'] : ['let ko = 0u;']), ...pipeline.top], '    '),
    AFTER_QK: lines(pipeline.afterQk, '    '), BOTTOM: lines(pipeline.bottom, '    '),
    LOAD_Q: lines(loadQ, '  '), DECLARE_O: lines(declareO, '  '),
    QK: lines(qk, '    '), RESCALE: lines(rescale, '      '), PV: lines(pv, '    '), OUTPUT: lines(output, '  '),
  });
  if (!v.alignedFlag || db) return wgsl;
  return wgsl.replace('var<workgroup> rescaleFlag: u32;', 'var<workgroup> rescaleFlags: array<u32, 4>;').replace(/\brescaleFlag\b/g, 'rescaleFlags[0]');
}

// Online softmax of one tile over this subgroup's rows, in log2 units. `masked`: keys past seqK and
// masked keys (the keep flags) take no weight; without it the tile must be full and unmasked.
function softmaxWgsl(v: StagedSubgroupMatrixVariant, masked: boolean, indent: string): string {
  const raw = v.prescaleQ ? 'sS[base + c]' : 'sS[base + c] * p.scaleLog2';
  const score = masked ? `select(MASKED, ${raw}, keep[ko + c] != 0.0)` : raw;
  const read = v.rereadS ? score : 'sv[rr * CPL + jj]';
  const weight = masked ? `select(0.0, exp2(${read} - newRef), keep[ko + c] != 0.0)` : `exp2(${read} - newRef)`;
  const flag = v.doubleBuffer ? 'rescaleFlags[slot]' : 'rescaleFlag';
  return `// online softmax over this tile, rows of this subgroup, in log2 units${masked ? '' : ' (full tile, no mask)'}
for (var rr = 0u; rr < opaque(RPL); rr++) {
  let row = lane / LPR + rr * (SG / LPR);
  let base = (sgRow0 + row) * SS;
  var mx = MASKED;
  for (var jj = 0u; jj < opaque(CPL); jj++) {
    let c = part + jj * LPR;
    let s = ${score};
${v.rereadS ? '' : '    sv[rr * CPL + jj] = s;\n'}    mx = max(mx, s);
  }
  for (var off = 1u; off < opaque(LPR); off <<= 1u) { mx = max(mx, subgroupShuffleXor(mx, off)); }
  let mRef = mRow[rr];
  let newRef = select(mRef, mx, mx > mRef + RESCALE_LOG2);
  let alpha = exp2(mRef - newRef);
  var sum = 0.0;
  let pBase = (sgRow0 + row) * PST;
  for (var jj = 0u; jj < opaque(CPL); jj++) {
    let c = part + jj * LPR;
    let pv = ${weight};
    sum += pv;
    pS[pBase + c] = f16(pv);
  }
  for (var off = 1u; off < opaque(LPR); off <<= 1u) { sum += subgroupShuffleXor(sum, off); }
  if (alpha < 1.0 && lRow[rr] > 0.0) { ${flag} = 1u; }
  lRow[rr] = lRow[rr] * alpha + sum;
  mRow[rr] = newRef;
  alphaRow[rr] = alpha;
}`.split('\n').map((l) => indent + l).join('\n');
}

// Register prefetch of the next K/V tile (and its mask flags): each invocation issues its global
// loads as soon as the registers are free, so their L2 latency overlaps the products and the
// softmax; stashK/stashV write them to workgroup memory after the barrier that frees the tile.
// Narrow: 4-byte words (WPL = 2 halves per load), else 16-byte chunks (8 halves).
function prefetchFunctions(narrow: boolean): string {
  const [wpl, elem, zero] = narrow ? [2, 'u32', '0u'] : [8, 'vec4<u32>', 'vec4<u32>(0u)'];
  const fetch = (x: 'K' | 'V', buf: 'k' | 'v') => `fn fetch${x}(b: u32, h: u32, kb: u32, lid: u32) {
  for (var t = 0u; t < LPT; t++) {
    let i = lid + t * WG;
    let key = kb + i / CPR;
    var w = ${zero};
    if (i < BC * CPR && key < p.seqK) { w = ${buf}[(p.${buf}Offset + (b * p.seqK + key) * p.${buf}RowStride + h * D) / ${wpl}u + i % CPR]; }
    ${buf}Reg[t] = w;
  }${x === 'V' ? '\n  keepReg = select(0.0, keepOf(b, kb + lid), lid < BC);' : ''}
}`;
  const put = (x: 'K' | 'V', arr: 'kT' | 'vT') => narrow
    ? `let hv = bitcast<vec2<f16>>(${x.toLowerCase()}Reg[t]); ${arr}[at] = hv.x; ${arr}[at + 1u] = hv.y;`
    : `put8${x}(at, ${x.toLowerCase()}Reg[t]);`;
  const stash = (x: 'K' | 'V', arr: 'kT' | 'vT') => `fn stash${x}(lid: u32, kvo: u32${x === 'V' ? ', ko: u32' : ''}) {
  for (var t = 0u; t < LPT; t++) {
    let i = lid + t * WG;
    let at = kvo + (i / CPR) * KS + (i % CPR) * ${wpl}u;
    if (i < BC * CPR) { ${put(x, arr)} }
  }${x === 'V' ? '\n  if (lid < BC) { keep[ko + lid] = keepReg; }' : ''}
}`;
  return [
    `const CPR: u32 = D / ${wpl}u;          // loads per key row`,
    'const LPT: u32 = (BC * CPR + WG - 1u) / WG;',
    `var<private> kReg: array<${elem}, LPT>;`,
    `var<private> vReg: array<${elem}, LPT>;`,
    'var<private> keepReg: f32;',
    fetch('K', 'k'), fetch('V', 'v'), stash('K', 'kT'), stash('V', 'vT'),
    narrow ? 'fn loadQ8(w: u32) -> vec4<u32> { return vec4<u32>(q[w], q[w + 1u], q[w + 2u], q[w + 3u]); }' : '',
  ].join('\n');
}
