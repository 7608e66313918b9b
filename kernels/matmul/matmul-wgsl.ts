/**
 * WGSL of the GEMM kernels. The portable kernel comes from matmul.portable.wgsl with constants
 * substituted; the subgroup-matrix kernel is generated here with its matrix code unrolled (each
 * matrix is a named `let`/`var`: WGSL cannot index an array of subgroup matrices at run time).
 */
import { readFileSync } from 'node:fs';

/** What the epilogue does after `acc + bias`. */
export interface Epilogue {
  /** Exact (erf) GELU. */
  gelu: boolean;
  /** `out = out + gamma · y`: add into the output buffer (residual stream), scaled by layer scale. */
  residual: boolean;
}

/** Operand layout beyond the plain row-major GEMM (batched attention products use both). */
export interface Layout {
  /** W is given as [N, K] row-major (the right operand is its transpose: Q·Kᵀ). */
  transposeW: boolean;
  /** Y is f32 whatever the input precision (attention scores before the softmax). */
  outF32: boolean;
}

export interface PortableMatmul extends Epilogue, Layout {
  path: 'portable';
  precision: 'f16' | 'f32';
  /** Run-time loop bounds (CPU adapters). */
  opaqueLoops: boolean;
}

export interface SubgroupMatrixMatmul extends Epilogue, Layout {
  path: 'subgroup-matrix';
  /** Rows and columns of the workgroup's output tile. */
  bm: number; bn: number;
  /** K step per workgroup-memory tile. */
  bk: number;
  /** Subgroup grid (sgm × sgn subgroups; each owns (bm/sgm) × (bn/sgn) outputs). */
  sgm: number; sgn: number;
  subgroupSize: number;
  /** Side of the square f16 → f32 matrix. */
  tile: number;
  /**
   * 1: one workgroup-memory tile, two barriers per K step. 2: two tiles; the next step's global
   * loads are issued into registers before this step's matrix products and stored after them,
   * one barrier per K step.
   */
  stages: 1 | 2;
  /** Right matrices loaded straight from storage (W not staged); needs N % bn = 0 and K % bk = 0. */
  wDirect: boolean;
  /**
   * With wDirect: the next K step's right matrices are loaded into registers before this step's
   * products (software pipelining of the storage loads, which otherwise stall the products).
   */
  wPrefetch: boolean;
  /**
   * With wDirect: left matrices loaded straight from storage too: no workgroup staging and no
   * barrier in the K loop. Needs M % tile = 0 (a 16-row matrix is then wholly inside or wholly past
   * M; those past it reload the last rows and are not stored): Matmul keeps a staged twin for other M.
   */
  xDirect?: boolean;
  /**
   * Result tiles per epilogue round (one barrier pair each; their residual and bias loads are
   * issued together). Scratch is nsg·epiTiles·T² f32, so chooseMatmul takes the largest that fits.
   * @defaultValue 1
   */
  epiTiles?: number;
}

export type MatmulVariant = PortableMatmul | SubgroupMatrixMatmul;

/** Output tile of a workgroup: [rows, cols]. */
export function outputTile(v: MatmulVariant): [number, number] {
  return v.path === 'portable' ? [64, 64] : [v.bm, v.bn];
}

/** A stable key for the pipeline cache. */
export function matmulKey(v: MatmulVariant): string {
  const e = `${v.gelu ? '-gelu' : ''}${v.residual ? '-res' : ''}${v.transposeW ? '-wT' : ''}${v.outF32 ? '-yf32' : ''}`;
  if (v.path === 'portable') return `matmul/portable-${v.precision}${e}${v.opaqueLoops ? '-opaque' : ''}`;
  return `matmul/sgmat-${shapeSpec(v)}${(v.epiTiles ?? 1) > 1 ? `-e${v.epiTiles}` : ''}-x${v.subgroupSize}-t${v.tile}${e}`;
}

/** The tiling part of a subgroup-matrix variant as `BMxBNxBK-sgMxN-sS[-wd|-wp]` (`--gemm` in the benches). */
export function shapeSpec(v: SubgroupMatrixMatmul): string {
  const d = v.xDirect ? (v.wPrefetch ? '-xp' : '-xd') : v.wPrefetch ? '-wp' : v.wDirect ? '-wd' : '';
  return `${v.bm}x${v.bn}x${v.bk}-sg${v.sgm}x${v.sgn}-s${v.stages}${d}`;
}

export type MatmulShapeSpec = Pick<SubgroupMatrixMatmul, 'bm' | 'bn' | 'bk' | 'sgm' | 'sgn' | 'stages' | 'wDirect' | 'wPrefetch' | 'xDirect'>;

/**
 * Parses {@link shapeSpec}'s format. `-wd`: W matrices straight from storage; `-wp`: those
 * prefetched one K step ahead; `-xd`: X matrices direct too; `-xp`: both direct and prefetched.
 */
export function parseShapeSpec(spec: string): MatmulShapeSpec {
  const m = /^(\d+)x(\d+)x(\d+)-sg(\d+)x(\d+)-s([12])(-wd|-wp|-xd|-xp)?$/.exec(spec);
  if (!m) throw new Error(`GEMM spec '${spec}': expected BMxBNxBK-sgMxN-s1|s2[-wd|-wp|-xd|-xp], e.g. 128x128x32-sg4x2-s2-wd`);
  return { bm: +m[1]!, bn: +m[2]!, bk: +m[3]!, sgm: +m[4]!, sgn: +m[5]!, stages: +m[6]! as 1 | 2, wDirect: !!m[7], wPrefetch: m[7] === '-wp' || m[7] === '-xp', xDirect: m[7] === '-xd' || m[7] === '-xp' };
}

/** Workgroup memory of a variant in bytes (against maxComputeWorkgroupStorageSize). */
export function workgroupBytes(v: MatmulVariant): number {
  if (v.path === 'portable') return 2 * 64 * 16 * 4;
  const xs = v.xDirect && v.wDirect ? 0 : v.bm * (v.bk + 8) * 2;
  const ws = v.wDirect ? 0 : (v.transposeW ? v.bn * (v.bk + 8) : v.bk * (v.bn + 8)) * 2;
  return v.stages * (xs + ws) + v.sgm * v.sgn * (v.epiTiles ?? 1) * v.tile * v.tile * 4;
}

/** Uniform words of every GEMM kernel: shape, leading dimensions and batch strides (elements). */
export const PARAMS_STRUCT = `struct Params {
  M: u32, N: u32, K: u32, kw: u32,      // kw: rows of W that hold data (zeros past it)
  ldx: u32, ldw: u32, ldy: u32, heads: u32,
  xI: u32, xJ: u32, xO: u32, pad: u32,  // operand base = (z / heads)·I + (z % heads)·J + O
  wI: u32, wJ: u32, wO: u32, pad1: u32,
  yI: u32, yJ: u32, yO: u32, pad2: u32,
}`;

const GELU_FN = `// Exact GELU, x·Φ(x), with erf from the complementary error function's Chebyshev fit
// (Numerical Recipes erfcc, |rel err| < 1.2e-7), the same formula as the CPU reference.
fn gelu(x: f32) -> f32 {
  let z = abs(x) * 0.70710678118654752;
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  let e = select(r - 1.0, 1.0 - r, x >= 0.0);
  return 0.5 * x * (1.0 + e);
}`;

let portableTemplate: string | undefined;

/** WGSL for a variant. */
export function matmulWgsl(v: MatmulVariant): string {
  return v.path === 'portable' ? portableWgsl(v) : subgroupMatrixWgsl(v);
}

function portableWgsl(v: PortableMatmul): string {
  portableTemplate ??= readFileSync(new URL('matmul.portable.wgsl', import.meta.url), 'utf8');
  const values: Record<string, string> = {
    ENABLES: v.precision === 'f16' ? 'enable f16;' : '',
    ET: v.precision, YT: v.outF32 ? 'f32' : v.precision, GELU: v.gelu ? '1' : '0', RESIDUAL: v.residual ? '1' : '0',
    TRANSPOSE_W: v.transposeW ? '1' : '0', OPAQUE: v.opaqueLoops ? '1' : '0', GELU_FN, PARAMS_STRUCT,
  };
  return portableTemplate.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`matmul template: no value for {{${k}}}`);
    return values[k]!;
  });
}

function subgroupMatrixWgsl(v: SubgroupMatrixMatmul): string {
  const { bm, bn, bk, sgm, sgn, subgroupSize: sg, tile: t, stages, wDirect, transposeW: wT } = v;
  const wPre = wDirect && v.wPrefetch;
  const xD = wDirect && !!v.xDirect;
  const xPre = xD && wPre;
  const tm = bm / sgm / t, tn = bn / sgn / t;
  const nsg = sgm * sgn, wg = nsg * sg;
  if (!Number.isInteger(tm) || !Number.isInteger(tn) || bk % t || bk % 8 || bn % 8 || (t * t) % sg) {
    throw new Error(`subgroup-matrix GEMM cannot tile ${bm}x${bn}x${bk} with ${sgm}x${sgn} subgroups of ${sg} and ${t}-tiles`);
  }
  if (wDirect && wT) throw new Error('subgroup-matrix GEMM: direct W loads are for row-major W only');
  // Chunks of 8 f16 (16 bytes) per staged tile, and how many each invocation moves.
  const xChunks = bm * bk / 8, wChunks = bk * bn / 8;
  const perX = xChunks / wg, perW = wChunks / wg;
  if (stages === 2 && !xD && (!Number.isInteger(perX) || (!wDirect && !Number.isInteger(perW)))) {
    throw new Error(`double-buffered GEMM needs the ${bm}x${bk} and ${bk}x${bn} tiles to split evenly over ${wg} invocations`);
  }
  const left = `subgroup_matrix_left<f16, ${t}, ${t}>`;
  const right = `subgroup_matrix_right<f16, ${t}, ${t}>`;
  const result = `subgroup_matrix_result<f32, ${t}, ${t}>`;
  const yt = v.outF32 ? 'f32' : 'f16';
  const L: string[] = [];
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) L.push(`  var acc_${i}_${j} = ${result}();`);
  const declare = L.join('\n');
  // Matrix products of one staged K tile (xo, wo: offsets of the tile copy in use).
  const inner: string[] = [];
  for (let kk = 0; kk < bk / t; kk++) {
    inner.push('    {');
    for (let i = 0; i < tm; i++) {
      if (xPre) inner.push(`      let a_${i} = xm_${kk}_${i};`);
      else if (xD) inner.push(`      let a_${i} = subgroupMatrixLoad<${left}, row_major>(&x, xb + xr_${i} + k0 + ${kk * t}u, p.ldx);`);
      else inner.push(`      let a_${i} = subgroupMatrixLoad<${left}, row_major>(&xs, xo + (r0 + ${i * t}u) * XS + ${kk * t}u, XS);`);
    }
    for (let j = 0; j < tn; j++) {
      if (wPre) inner.push(`      let b_${j} = wm_${kk}_${j};`);
      else if (wDirect) inner.push(`      let b_${j} = subgroupMatrixLoad<${right}, row_major>(&w, wb + (k0 + ${kk * t}u) * p.ldw + col0 + c0 + ${j * t}u, p.ldw);`);
      else if (wT) inner.push(`      let b_${j} = subgroupMatrixLoad<${right}, col_major>(&ws, wo + (c0 + ${j * t}u) * WS + ${kk * t}u, WS);`);
      else inner.push(`      let b_${j} = subgroupMatrixLoad<${right}, row_major>(&ws, wo + ${kk * t}u * WS + c0 + ${j * t}u, WS);`);
    }
    for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) inner.push(`      acc_${i}_${j} = subgroupMatrixMultiplyAccumulate(a_${i}, b_${j}, acc_${i}_${j});`);
    inner.push('    }');
  }
  // Prefetched right matrices: this step's in wm_*, the next step's (the last step reloads its own
  // rows: direct loads have no bounds checks) issued before the products and swapped in after.
  const wmDecl: string[] = [], wmNext: string[] = [], wmSwap: string[] = [];
  if (wPre) for (let kk = 0; kk < bk / t; kk++) for (let j = 0; j < tn; j++) {
    const at = (k: string) => `subgroupMatrixLoad<${right}, row_major>(&w, wb + (${k} + ${kk * t}u) * p.ldw + col0 + c0 + ${j * t}u, p.ldw)`;
    wmDecl.push(`  var wm_${kk}_${j} = ${at('0u')};`);
    wmNext.push(`    let wn_${kk}_${j} = ${at('kn')};`);
    wmSwap.push(`    wm_${kk}_${j} = wn_${kk}_${j};`);
  }
  if (xPre) for (let kk = 0; kk < bk / t; kk++) for (let i = 0; i < tm; i++) {
    const at = (k: string) => `subgroupMatrixLoad<${left}, row_major>(&x, xb + xr_${i} + ${k} + ${kk * t}u, p.ldx)`;
    wmDecl.push(`  var xm_${kk}_${i} = ${at('0u')};`);
    wmNext.push(`    let xn_${kk}_${i} = ${at('kn')};`);
    wmSwap.push(`    xm_${kk}_${i} = xn_${kk}_${i};`);
  }
  const wmFetch = wPre ? `    let kn = min(k0 + BK, p.K - BK);\n${wmNext.join('\n')}\n` : '';
  const wmAfter = wPre ? `\n${wmSwap.join('\n')}` : '';
  // Staged tiles: X is BM×BK (chunks along k); W is BK×BN (chunks along n) or, transposed, BN×BK.
  const xRow = '(BK / 8u)', wRow = wT ? '(BK / 8u)' : '(BN / 8u)';
  const xAt = (i: string) => `(${i} / ${xRow}) * XS + (${i} % ${xRow}) * 8u`;
  const wAt = (i: string) => `(${i} / ${wRow}) * WS + (${i} % ${wRow}) * 8u`;
  const xLoad = (i: string, k0: string) => `ldX(xb, row0 + ${i} / ${xRow}, ${k0} + (${i} % ${xRow}) * 8u)`;
  const wLoad = (i: string, k0: string) => wT ? `ldW(wb, col0 + ${i} / ${wRow}, ${k0} + (${i} % ${wRow}) * 8u)` : `ldW(wb, ${k0} + ${i} / ${wRow}, col0 + (${i} % ${wRow}) * 8u)`;
  let loop: string;
  if (xD) {
    const rows: string[] = [];
    for (let i = 0; i < tm; i++) rows.push(`  let xr_${i} = min(row0 + r0 + ${i * t}u, p.M - T) * p.ldx;`);
    loop = `${rows.join('\n')}
${wmDecl.join('\n')}
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
${wmFetch}${inner.join('\n')}${wmAfter}
  }`;
  } else if (stages === 1) {
    loop = `${wmDecl.join('\n')}
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    workgroupBarrier();
    for (var i = lid; i < ${xChunks}u; i += WG) { putX(${xAt('i')}, ${xLoad('i', 'k0')}); }
${wDirect ? '' : `    for (var i = lid; i < ${wChunks}u; i += WG) { putW(${wAt('i')}, ${wLoad('i', 'k0')}); }\n`}    workgroupBarrier();
    let xo = 0u;
    let wo = 0u;
${wmFetch}${inner.join('\n')}${wmAfter}
  }`;
  } else {
    const pre: string[] = [], fetch: string[] = [], put: string[] = [];
    for (let c = 0; c < perX; c++) {
      pre.push(`  let ix_${c} = lid + ${c * wg}u;`);
      fetch.push(`    let qx_${c} = ${xLoad(`ix_${c}`, 'k0 + BK')};`);
      put.push(`    putX(nxo + ${xAt(`ix_${c}`)}, qx_${c});`);
    }
    if (!wDirect) for (let c = 0; c < perW; c++) {
      pre.push(`  let iw_${c} = lid + ${c * wg}u;`);
      fetch.push(`    let qw_${c} = ${wLoad(`iw_${c}`, 'k0 + BK')};`);
      put.push(`    putW(nwo + ${wAt(`iw_${c}`)}, qw_${c});`);
    }
    const first = put.map((l) => l.replace(/nxo \+ |nwo \+ /, '')).join('\n');
    const firstFetch = fetch.map((l) => l.replace('k0 + BK', '0u')).join('\n');
    loop = `${pre.join('\n')}
${wmDecl.join('\n')}
  {
    let k0 = 0u;
${firstFetch}
${first}
  }
  workgroupBarrier();
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    let cur = (k0 / BK) & 1u;
    let xo = cur * XT;
    let wo = cur * WT;
    let nxo = XT - xo;
    let nwo = WT - wo;
    // Next tile's global loads first, so they are in flight during this tile's products.
${fetch.join('\n')}
${wmFetch}${inner.join('\n')}${wmAfter}
${put.join('\n')}
    workgroupBarrier();
  }`;
  }
  const epiTiles = v.epiTiles ?? 1;
  if (!Number.isInteger(epiTiles) || epiTiles < 1 || (tm * tn) % epiTiles) throw new Error(`subgroup-matrix GEMM: ${epiTiles} epilogue tiles do not divide ${tm * tn}`);
  const tiles: [number, number][] = [];
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) tiles.push([i, j]);
  const run = t * t / sg;
  const straight = Number.isInteger(run) && run <= t && t % run === 0;
  if (!straight && epiTiles > 1) throw new Error(`subgroup-matrix GEMM: grouped epilogue needs T²/SG columns per lane within a row (T ${t}, SG ${sg})`);
  const epi: string[] = [];
  if (straight) epi.push(`  let em = lane / ${t / run}u;\n  let en = (lane % ${t / run}u) * ${run}u;`);
  for (let g = 0; g < tiles.length; g += epiTiles) {
    const group = tiles.slice(g, g + epiTiles);
    epi.push('  workgroupBarrier();');
    group.forEach(([i, j], q) => epi.push(`  subgroupMatrixStore<row_major>(&scr, (sg * ${epiTiles}u + ${q}u) * TT, acc_${i}_${j}, T);`));
    epi.push('  workgroupBarrier();');
    if (straight) epi.push(epilogueGroup(group, run, t, epiTiles, yt, v.gelu, v.residual));
    else for (const [i, j] of group) epi.push(`  writeTile(sg, lane, yb, row0 + r0 + ${i * t}u, col0 + c0 + ${j * t}u);`);
  }
  const wsSize = wT ? 'BN * WS' : 'BK * WS';
  return `// GEMM, subgroup-matrix path (generated by matmul-wgsl.ts): Y[M, N] = epilogue(X[M, K] · W[K, N]),
// f16 tensors, f32 accumulation in subgroup matrices (tensor cores). A workgroup owns BM×BN outputs
// of batch entry z = workgroup_id.z; its ${nsg} subgroups (${sgm}×${sgn}) own ${tm}×${tn} tiles of ${t}×${t}.
// X${wDirect ? '' : ' and W'} tiles pass through workgroup memory with 16-byte loads (K, N, strides and bases
// multiples of 8)${stages === 2 ? ', double-buffered (one barrier per K step)' : ''}${wDirect ? '; W matrices load straight from storage' : ''}${wT ? '; W is [N, K] (transposed operand)' : ''}.
// The epilogue goes through a per-subgroup f32 scratch tile: y = acc + bias; GELU; y = out + gamma·y when RESIDUAL.
enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;

${PARAMS_STRUCT}

const BM: u32 = ${bm}u;
const BN: u32 = ${bn}u;
const BK: u32 = ${bk}u;
const T: u32 = ${t}u;
const TT: u32 = ${t * t}u;
const SG: u32 = ${sg}u;
const WG: u32 = ${wg}u;
const XS: u32 = BK + 8u;
const WS: u32 = ${wT ? 'BK' : 'BN'} + 8u;
const XT: u32 = BM * XS;
const WT: u32 = ${wsSize};
const GELU: u32 = ${v.gelu ? 1 : 0}u;
const RESIDUAL: u32 = ${v.residual ? 1 : 0}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<${xD ? 'f16' : 'vec4<u32>'}>;
@group(0) @binding(2) var<storage, read> w: array<${wDirect ? 'f16' : 'vec4<u32>'}>;
@group(0) @binding(3) var<storage, read> bias: array<f16>;
@group(0) @binding(4) var<storage, read> gamma: array<f16>;
@group(0) @binding(5) var<storage, read_write> y: array<${yt}>;

${xD ? '' : `var<workgroup> xs: array<f16, ${stages} * XT>;\n`}${wDirect ? '' : `var<workgroup> ws: array<f16, ${stages} * WT>;\n`}var<workgroup> scr: array<f32, ${nsg * epiTiles} * TT>;

${GELU_FN}

${xD ? '' : `// 8 f16 of X at (row, k..k+8); zeros outside.
fn ldX(xb: u32, row: u32, k: u32) -> vec4<u32> {
  if (row < p.M && k < p.K) { return x[(xb + row * p.ldx + k) / 8u]; }
  return vec4<u32>(0u);
}`}
${wDirect ? '' : wT ? `// 8 f16 of the [N, K] operand at (n, k..k+8); zeros outside.
fn ldW(wb: u32, n: u32, k: u32) -> vec4<u32> {
  if (n < p.N && k < p.K) { return w[(wb + n * p.ldw + k) / 8u]; }
  return vec4<u32>(0u);
}` : `// 8 f16 of W at (k, n..n+8); zeros outside (rows from kw on are zeros too).
fn ldW(wb: u32, k: u32, n: u32) -> vec4<u32> {
  if (k < p.kw && n < p.N) { return w[(wb + k * p.ldw + n) / 8u]; }
  return vec4<u32>(0u);
}`}

${xD ? '' : `fn putX(at: u32, q: vec4<u32>) {
  let a = bitcast<vec2<f16>>(q.x); let b = bitcast<vec2<f16>>(q.y);
  let c = bitcast<vec2<f16>>(q.z); let d = bitcast<vec2<f16>>(q.w);
  xs[at] = a.x; xs[at + 1u] = a.y; xs[at + 2u] = b.x; xs[at + 3u] = b.y;
  xs[at + 4u] = c.x; xs[at + 5u] = c.y; xs[at + 6u] = d.x; xs[at + 7u] = d.y;
}`}
${wDirect ? '' : `fn putW(at: u32, q: vec4<u32>) {
  let a = bitcast<vec2<f16>>(q.x); let b = bitcast<vec2<f16>>(q.y);
  let c = bitcast<vec2<f16>>(q.z); let d = bitcast<vec2<f16>>(q.w);
  ws[at] = a.x; ws[at + 1u] = a.y; ws[at + 2u] = b.x; ws[at + 3u] = b.y;
  ws[at + 4u] = c.x; ws[at + 5u] = c.y; ws[at + 6u] = d.x; ws[at + 7u] = d.y;
}`}

${straight ? '' : writeTileWgsl(yt)}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_id) sg: u32) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let bi = wg.z / p.heads;
  let bj = wg.z % p.heads;
  let xb = bi * p.xI + bj * p.xJ + p.xO;
  let wb = bi * p.wI + bj * p.wJ + p.wO;
  let yb = bi * p.yI + bj * p.yJ + p.yO;
  let r0 = (sg / ${sgn}u) * ${tm * t}u;
  let c0 = (sg % ${sgn}u) * ${tn * t}u;
${declare}
${loop}
${epi.join('\n')}
}
`;
}

/** The epilogue of one scratch tile, lane by lane over its elements (subgroups wider than T²/T). */
function writeTileWgsl(yt: string): string {
  return `// This subgroup's scratch tile → output rows m0.., columns n0.. with the epilogue.
fn writeTile(sg: u32, lane: u32, yb: u32, m0: u32, n0: u32) {
  for (var e = lane; e < TT; e += SG) {
    let m = m0 + e / T;
    let n = n0 + e % T;
    if (m < p.M && n < p.N) {
      let at = yb + m * p.ldy + n;
      var v = scr[sg * TT + e] + f32(bias[n]);
      if (GELU == 1u) { v = gelu(v); }
      if (RESIDUAL == 1u) { v = f32(y[at]) + f32(gamma[n]) * v; }
      y[at] = ${yt}(v);
    }
  }
}`;
}

/**
 * The epilogue of a group of result tiles just stored to scratch, inline: each lane takes one run
 * of `run` columns in one row (em, en) of every tile, and every scratch, bias, gamma and residual
 * load of the group is issued before the first store (a store to y may alias a later load of y,
 * so loads after it could not be hoisted; a per-element loop paid the residual latency per
 * element). Rows past M and columns past N read clamped indices and are not stored.
 */
function epilogueGroup(group: [number, number][], run: number, t: number, epiTiles: number, yt: string, gelu: boolean, residual: boolean): string {
  const L: string[] = ['  {'];
  const ks = Array.from({ length: run }, (_, k) => k);
  group.forEach(([i, j], q) => {
    L.push(`    let m${q} = row0 + r0 + ${i * t}u + em;`);
    L.push(`    let n${q} = col0 + c0 + ${j * t}u + en;`);
    L.push(`    let y${q} = yb + min(m${q}, p.M - 1u) * p.ldy;`);
    L.push(`    let s${q} = (sg * ${epiTiles}u + ${q}u) * TT + em * T + en;`);
    for (const k of ks) L.push(`    let c${q}_${k} = min(n${q} + ${k}u, p.N - 1u);`);
    for (const k of ks) L.push(`    var v${q}_${k} = scr[s${q} + ${k}u] + f32(bias[c${q}_${k}]);`);
    if (residual) for (const k of ks) L.push(`    let r${q}_${k} = f32(y[y${q} + c${q}_${k}]);\n    let g${q}_${k} = f32(gamma[c${q}_${k}]);`);
  });
  // Every binding stays statically used (the bind group layout is derived from the shader and
  // Matmul binds all five): a dead branch keeps gamma in the layout of non-residual variants.
  if (!residual) L.push(`    if (RESIDUAL == 1u) { v0_0 += f32(gamma[c0_0]); }`);
  group.forEach((_, q) => {
    for (const k of ks) {
      if (gelu) L.push(`    v${q}_${k} = gelu(v${q}_${k});`);
      if (residual) L.push(`    v${q}_${k} = r${q}_${k} + g${q}_${k} * v${q}_${k};`);
    }
  });
  group.forEach((_, q) => {
    L.push(`    if (m${q} < p.M) {`);
    for (const k of ks) L.push(`      if (n${q} + ${k}u < p.N) { y[y${q} + n${q} + ${k}u] = ${yt}(v${q}_${k}); }`);
    L.push('    }');
  });
  L.push('  }');
  return L.join('\n');
}
