/**
 * Diagnostic for the subgroup-matrix path: tiny kernels that load known 16×16 f16 matrices,
 * multiply by the identity and store, in the ways flash-attention.subgroup-matrix.wgsl does
 * (workgroup and storage arrays, padded strides, offsets, several subgroups via subgroup_id), and
 * print how each result compares with the expected matrix and its transpose.
 * Run: node --import tsx kernels/flash-attention/subgroup-matrix-probe.ts   (needs the feature)
 */
import { GpuContext } from '../gpu/gpu-context.ts';
import { toF16Array } from '../gpu/f16.ts';
import { FlashAttention } from './flash-attention.ts';
import { checkAttention } from './attention-check.ts';

const ctx = await GpuContext.create();
console.log(ctx.describe());
const d = ctx.device;
const A = Float32Array.from({ length: 256 }, (_, i) => ((i * 7) % 23) - 11);
const I = Float32Array.from({ length: 256 }, (_, i) => (Math.floor(i / 16) === i % 16 ? 1 : 0));
const at = (m: Float32Array, r: number, c: number) => m[r * 16 + c]!;

async function probe(name: string, body: string, wgSize = 32, regions = 1): Promise<void> {
  const code = `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
alias L = subgroup_matrix_left<f16, 16, 16>;
alias Rt = subgroup_matrix_right<f16, 16, 16>;
alias Acc = subgroup_matrix_result<f32, 16, 16>;
@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read> id: array<f16>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@group(0) @binding(3) var<storage, read> au: array<u32>;
var<workgroup> wa: array<f16, 2048>;
var<workgroup> wi: array<f16, 2048>;
var<workgroup> wo: array<f32, 2048>;
var<workgroup> tight: array<f16, 376>;
var<workgroup> tightOut: array<f32, 316>;
@compute @workgroup_size(${wgSize})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
${body}
}`;
  try {
    const pipeline = await ctx.pipeline(`probe-${name}`, code);
    const aBuf = ctx.upload(toF16Array(A), GPUBufferUsage.STORAGE);
    const iBuf = ctx.upload(toF16Array(I), GPUBufferUsage.STORAGE);
    const uBuf = ctx.upload(toF16Array(A), GPUBufferUsage.STORAGE);
    const out = ctx.upload(new Float32Array(2048).fill(-999), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [aBuf, iBuf, out, uBuf].map((b, i) => ({ binding: i, resource: { buffer: b } })).filter((e) => code.includes(['a[', 'id[', 'o[', 'au['][e.binding]!) || code.includes(['&a', '&id', '&o', '&au'][e.binding]!)) }));
    pass.dispatchWorkgroups(1);
    pass.end();
    d.queue.submit([enc.finish()]);
    const got = new Float32Array(await ctx.read(out));
    for (let g = 0; g < regions; g++) {
      let eq = 0, tr = 0;
      for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) {
        const x = got[g * 256 + r * 16 + c]!;
        eq = Math.max(eq, Math.abs(x - at(A, r, c)));
        tr = Math.max(tr, Math.abs(x - at(A, c, r)));
      }
      console.log(`${name}${regions > 1 ? ` region ${g}` : ''}: max|out−A| ${eq}  max|out−Aᵀ| ${tr}  first row ${[...got.subarray(g * 256, g * 256 + 8)].join(' ')}  (A row 0: ${[...A.subarray(0, 8)].join(' ')})`);
    }
    for (const b of [aBuf, iBuf, out, uBuf]) b.destroy();
  } catch (err) {
    console.log(`${name}: ${(err as Error).message.slice(0, 300)}`);
  }
}

const stage = `for (var i = lid; i < 256u; i += ${'WG'}) { wa[i] = a[i]; wi[i] = id[i]; }
  workgroupBarrier();`;
const copyOut = (n = 256) => `workgroupBarrier();
  for (var i = lid; i < ${n}u; i += WG) { o[i] = wo[i]; }`;
const wg = (s: string, n = 32) => s.replaceAll('WG', `${n}u`);

await probe('storage L·I → storage', `let l = subgroupMatrixLoad<L, row_major>(&a, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, row_major>(&id, 0u, 16u);
  subgroupMatrixStore<row_major>(&o, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);`);
await probe('storage I·A → storage', `let l = subgroupMatrixLoad<L, row_major>(&id, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, row_major>(&a, 0u, 16u);
  subgroupMatrixStore<row_major>(&o, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);`);
await probe('workgroup L·I → workgroup → storage', wg(`${stage}
  let l = subgroupMatrixLoad<L, row_major>(&wa, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, row_major>(&wi, 0u, 16u);
  subgroupMatrixStore<row_major>(&wo, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);
  ${copyOut()}`));
await probe('workgroup I·A (V-like) → workgroup', wg(`${stage}
  let l = subgroupMatrixLoad<L, row_major>(&wi, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, row_major>(&wa, 0u, 16u);
  subgroupMatrixStore<row_major>(&wo, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);
  ${copyOut()}`));
await probe('workgroup padded stride 24 offset 8', wg(`for (var i = lid; i < 256u; i += WG) { wa[8u + (i / 16u) * 24u + i % 16u] = a[i]; wi[i] = id[i]; }
  workgroupBarrier();
  let l = subgroupMatrixLoad<L, row_major>(&wa, 8u, 24u);
  let r = subgroupMatrixLoad<Rt, row_major>(&wi, 0u, 16u);
  subgroupMatrixStore<row_major>(&wo, 4u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 20u);
  workgroupBarrier();
  for (var i = lid; i < 256u; i += WG) { o[i] = wo[4u + (i / 16u) * 20u + i % 16u]; }`));
await probe('4 subgroups, subgroup_id regions', wg(`${stage}
  let l = subgroupMatrixLoad<L, row_major>(&wa, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, row_major>(&wi, 0u, 16u);
  subgroupMatrixStore<row_major>(&wo, sg * 256u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);
  ${copyOut(1024).replaceAll('WG', '128u')}`, 128), 128, 4);
await probe('scalar f16 bitcast staging (A via u32 pairs)', wg(`for (var i = lid; i < 128u; i += WG) { let h = bitcast<vec2<f16>>(au[i]); wa[2u * i] = h.x; wa[2u * i + 1u] = h.y; }
  for (var i = lid; i < 256u; i += WG) { wi[i] = id[i]; }
  workgroupBarrier();
  let l = subgroupMatrixLoad<L, row_major>(&wa, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, row_major>(&wi, 0u, 16u);
  subgroupMatrixStore<row_major>(&wo, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);
  ${copyOut()}`));
await probe('exact-size arrays (15·stride + 16 elements)', wg(`for (var i = lid; i < 256u; i += WG) { tight[(i / 16u) * 24u + i % 16u] = a[i]; wi[i] = id[i]; }
  workgroupBarrier();
  let l = subgroupMatrixLoad<L, row_major>(&tight, 0u, 24u);
  let r = subgroupMatrixLoad<Rt, row_major>(&wi, 0u, 16u);
  subgroupMatrixStore<row_major>(&tightOut, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 20u);
  workgroupBarrier();
  for (var i = lid; i < 256u; i += WG) { o[i] = tightOut[(i / 16u) * 20u + i % 16u]; }`));
await probe('Kᵀ-like: right col_major from A, left I', wg(`${stage}
  let l = subgroupMatrixLoad<L, row_major>(&wi, 0u, 16u);
  let r = subgroupMatrixLoad<Rt, col_major>(&wa, 0u, 16u);
  subgroupMatrixStore<row_major>(&wo, 0u, subgroupMatrixMultiplyAccumulate(l, r, Acc()), 16u);
  ${copyOut()}`));
await ctx.destroy();

// the whole kernel under two hypotheses: one subgroup per workgroup (subgroup_id always 0), and
// Dawn's robustness transform off (it could clamp matrix loads from workgroup arrays)
for (const toggles of [[], ['disable_robustness']]) {
  const c2 = await GpuContext.create({ enableToggles: toggles });
  for (const nsg of [1, 4]) {
    const variant = { path: 'subgroup-matrix' as const, headDim: 64, tile: 16, subgroupSize: 32, subgroupsPerWorkgroup: nsg, mTilesPerSubgroup: 1, keysPerTile: 32, emulate: false };
    try {
      const fa = await FlashAttention.create(c2, { headDim: 64, precision: 'f16', variant });
      for (const [sq, sk] of [[1, 1], [16, 16], [37, 90]] as const) {
        const r = await checkAttention(c2, fa, { batch: 1, heads: 1, seqQ: sq, seqK: sk, headDim: 64 }, { seed: 3 });
        console.log(`kernel ${fa.name} toggles [${toggles}] Sq=${sq} Sk=${sk}: rel.err ${r.relError.toExponential(2)} unwritten ${r.unwritten}`);
      }
      fa.destroy();
    } catch (err) {
      console.log(`kernel nsg ${nsg} toggles [${toggles}]: ${(err as Error).message.slice(0, 300)}`);
    }
  }
  await c2.destroy();
}
