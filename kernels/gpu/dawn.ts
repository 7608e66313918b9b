/**
 * The one place that loads Dawn (the `webgpu` npm package). Importing this module installs the
 * WebGPU globals (GPUBufferUsage, GPUMapMode, …) on globalThis and keeps one Dawn instance per
 * distinct flag set for the life of the process: creating and dropping instances repeatedly is
 * what made Dawn's background threads trip over freed state (see kernels/flash-attention/NOTES.md).
 */
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);

const instances = new Map<string, GPU>();

/** The Dawn instance for these flags (`enable-dawn-features=…`, `backend=…`, `adapter=…`). */
export function dawnInstance(flags: string[]): GPU {
  const key = flags.join('\n');
  let gpu = instances.get(key);
  if (!gpu) {
    gpu = create(flags);
    instances.set(key, gpu);
  }
  return gpu;
}
