/**
 * A prepared compute dispatch (pipeline, bind group, its uniform buffer and grid) that the ViT
 * engine records into one compute pass per forward; shared by the matmul, layernorm, patch-embed,
 * vit-tokens and knn kernels. Preparing once per shape and replaying keeps the host cost of a
 * forward to a few dozen `setPipeline`/`setBindGroup`/`dispatchWorkgroups` calls.
 */

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  groups: [number, number, number];
  /** Owned by the dispatch; freed by {@link destroyDispatch}. */
  uniform: GPUBuffer;
}

/** Records one dispatch into a pass. */
export function recordDispatch(pass: GPUComputePassEncoder, d: Dispatch): void {
  pass.setPipeline(d.pipeline);
  pass.setBindGroup(0, d.bindGroup);
  pass.dispatchWorkgroups(d.groups[0], d.groups[1], d.groups[2]);
}

/** Frees what a dispatch owns (the pipeline stays in the context cache). */
export function destroyDispatch(d: Dispatch): void {
  d.uniform.destroy();
}

/** A 16-byte-multiple uniform buffer holding `words` (u32, or f32 where `floats` says so). */
export function uniformWords(device: GPUDevice, words: number[], floats: ReadonlySet<number> = new Set()): GPUBuffer {
  const size = Math.max(16, Math.ceil(words.length / 4) * 16);
  const data = new ArrayBuffer(size);
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  words.forEach((w, i) => { if (floats.has(i)) f[i] = w; else u[i] = w >>> 0; });
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'lamina-params' });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/** Bind group 0 of `pipeline` with the uniform at binding 0 and `buffers` at 1, 2, …. */
export function bindAll(device: GPUDevice, pipeline: GPUComputePipeline, uniform: GPUBuffer, buffers: GPUBuffer[]): GPUBindGroup {
  return device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [uniform, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}

/**
 * Spreads `count` workgroups over x and y when x alone would exceed the per-dimension limit;
 * kernels recover the flat index as `wg.x + wg.y * groupsX` (groupsX is passed in their params).
 */
export function spreadGroups(count: number, maxPerDim: number): [number, number] {
  if (count <= maxPerDim) return [Math.max(1, count), 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}
