/**
 * The interface every flash-attention kernel shares with FlashAttention.prepare (flash-attention.ts):
 * the 64-byte uniform (written there as 16 u32/f32 words in this order) and the six bindings.
 * Offsets and row strides count elements of the tensor type; element (b, s, h, d) of a tensor is at
 * offset + (b·seq + s)·rowStride + h·D + d. Only the element types of the storage arrays differ
 * between kernels (packed u32 pairs, vec4 words, or f16 for matrix loads).
 */
export function attentionBindingsWgsl(inputElement: string, outputElement: string): string {
  return `struct Params {
  batch: u32, heads: u32, seqQ: u32, seqK: u32,
  qOffset: u32, qRowStride: u32, kOffset: u32, kRowStride: u32,
  vOffset: u32, vRowStride: u32, oOffset: u32, oRowStride: u32,
  scaleLog2: f32, hasMask: u32, maskOffset: u32, pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<${inputElement}>;
@group(0) @binding(2) var<storage, read> k: array<${inputElement}>;
@group(0) @binding(3) var<storage, read> v: array<${inputElement}>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<${outputElement}>;`;
}
