/**
 * Ceiling probes for the subgroup-matrix stack (Dawn → SPIR-V cooperative matrices → driver): how
 * many TFLOP/s f16×f16→f32 16×16×16 products reach when nothing else runs. Every attention and GEMM
 * kernel here sits on this; if the probe itself is far under a kernel's target, no tiling reaches it.
 * Modes (each subgroup keeps ACC independent accumulators so that MMA latency is hidden):
 *  - 'reg':    A and B loaded once, then only MMAs (the tensor-core ceiling of this stack);
 *  - 'loadB':  a fresh right operand from workgroup memory for every MMA (design 2's S = Q·Kᵀ);
 *  - 'loadAB': fresh left and right operands for every MMA (a GEMM inner loop without reuse);
 *  - 'storeS': 'loadB' plus one f32 result store to workgroup memory per ACC MMAs (design 2's S
 *    round-trip through workgroup memory);
 *  - 'barrier': 'loadB' plus one workgroupBarrier() per ACC MMAs (the barrier cadence of design 2,
 *    which has five per 32-key tile for 16 MMAs per subgroup, counting workgroupUniformLoad's two).
 */
import type { GpuContext } from '../gpu/gpu-context.ts';

export type ProbeMode = 'reg' | 'loadB' | 'loadAB' | 'storeS' | 'barrier';
export const PROBE_MODES: ProbeMode[] = ['reg', 'loadB', 'loadAB', 'storeS', 'barrier'];

const ACC = 8;
const NSG = 4;

export function mmaProbeWgsl(mode: ProbeMode, subgroupSize: number): string {
  const left = 'subgroup_matrix_left<f16, 16, 16>';
  const right = 'subgroup_matrix_right<f16, 16, 16>';
  const result = 'subgroup_matrix_result<f32, 16, 16>';
  const body: string[] = [];
  for (let j = 0; j < ACC; j++) {
    // offsets move with the iteration so that no load can be hoisted out of the loop
    const a = mode === 'loadAB' ? `subgroupMatrixLoad<${left}, row_major>(&ab, ((it + ${j}u) & 7u) * 256u, 16u)` : 'a0';
    const b = mode === 'reg' ? 'b0' : `subgroupMatrixLoad<${right}, col_major>(&ab, ((it + ${j + 3}u) & 7u) * 256u, 16u)`;
    body.push(`c${j} = subgroupMatrixMultiplyAccumulate(${a}, ${b}, c${j});`);
  }
  if (mode === 'barrier') body.push('workgroupBarrier();');
  if (mode === 'storeS') body.push(`subgroupMatrixStore<row_major>(&sS, sg * 256u, c${ACC - 1}, 16u);`);
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<uniform> iters: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<workgroup> ab: array<f16, 2048>;
var<workgroup> sS: array<f32, ${NSG * 256}>;
@compute @workgroup_size(${NSG * subgroupSize})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
  for (var i = lid; i < 2048u; i += ${NSG * subgroupSize}u) { ab[i] = f16(f32(i % 13u) * 0.0078125); }
  workgroupBarrier();
  let a0 = subgroupMatrixLoad<${left}, row_major>(&ab, 0u, 16u);
  let b0 = subgroupMatrixLoad<${right}, col_major>(&ab, 256u, 16u);
${Array.from({ length: ACC }, (_, j) => `  var c${j} = ${result}();`).join('\n')}
  for (var it = 0u; it < iters.x; it++) {
${body.map((l) => `    ${l}`).join('\n')}
  }
${Array.from({ length: ACC }, (_, j) => `  subgroupMatrixStore<row_major>(&out, ((wg.x * ${NSG}u + sg) * ${ACC}u + ${j}u) * 256u, c${j}, 16u);`).join('\n')}
}
`;
}

export interface ProbeResult { mode: ProbeMode; ms: number; tflops: number }

/** Times one probe: `groups` workgroups of 4 subgroups, `iters` rounds of 8 MMAs each. */
export async function runMmaProbe(ctx: GpuContext, mode: ProbeMode, groups = 132 * 16, iters = 1024, reps = 5): Promise<ProbeResult> {
  const sg = ctx.capabilities.subgroupMaxSize;
  const pipeline = await ctx.pipeline(`mma-probe/${mode}-sg${sg}`, mmaProbeWgsl(mode, sg));
  const dev = ctx.device;
  const uniform = ctx.upload(new Uint32Array([iters, 0, 0, 0]), GPUBufferUsage.UNIFORM);
  const out = dev.createBuffer({ size: groups * NSG * ACC * 256 * 4, usage: GPUBufferUsage.STORAGE });
  const bindGroup = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: uniform } }, { binding: 1, resource: { buffer: out } }] });
  const run = (timestampWrites?: GPUComputePassTimestampWrites) => {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass(timestampWrites ? { timestampWrites } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups);
    pass.end();
    dev.queue.submit([enc.finish()]);
  };
  try {
    run();
    await ctx.sync();
    const timer = ctx.timer;
    for (let i = 0; i < reps; i++) run(timer.passTimestamps());
    const times = (await timer.read()).sort((a, b) => a - b);
    const ns = times[Math.floor(times.length / 2)]!;
    const flops = groups * NSG * iters * ACC * 2 * 16 ** 3;
    return { mode, ms: ns / 1e6, tflops: flops / (ns * 1e-9) / 1e12 };
  } finally {
    uniform.destroy();
    out.destroy();
  }
}
