/**
 * What `lamina gpus` prints and what `--gpu N` / `--gpus` check before anything opens a device:
 * every adapter Dawn enumerates, with the fields and optional features kernels choose paths by.
 *
 * @example
 *   for (const a of await describeAdapters()) console.log(a.index, a.description, a.features);
 */
import { DeviceError } from '../../src/errors.ts';
import { dawnInstance } from './dawn.ts';
import { DEFAULT_TOGGLES, listAdapters, type AdapterEntry } from './gpu-context.ts';

/** One adapter with what it reports about itself. */
export interface AdapterDetails extends AdapterEntry {
  vendor: string;
  architecture: string;
  description: string;
  /** The optional features Lamina's kernels use that this adapter has, in {@link KERNEL_FEATURES} order. */
  features: string[];
  /** A software adapter (lavapipe, SwiftShader). */
  cpu: boolean;
}

/** The optional features kernels pick code paths by. */
export const KERNEL_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'] as const;

/**
 * Throws the DeviceError `GpuContext.create` gives for an index that names no adapter, before any
 * device is opened, so a CLI flag fails at once rather than when the first job runs.
 */
export function checkAdapterIndex(index: number, adapters: AdapterEntry[]): AdapterEntry {
  const entry = adapters[index];
  if (!entry) {
    throw new DeviceError(`GPU adapter ${index} does not exist; found ${adapters.length}: ${adapters.map((a) => `${a.index} ${a.name} (${a.backend})`).join(', ') || 'none'}`);
  }
  return entry;
}

/** Every adapter Dawn finds, in its order, each opened (no device) to read its info and features. */
export async function describeAdapters(options: { backend?: string } = {}): Promise<AdapterDetails[]> {
  const entries = await listAdapters(options);
  const out: AdapterDetails[] = [];
  for (const entry of entries) {
    // dawn.node selects by name, so adapters sharing a name all report the first one's details.
    const flags = [`enable-dawn-features=${DEFAULT_TOGGLES.join(',')}`, `backend=${entry.backend}`, `adapter=${entry.name}`];
    let adapter: GPUAdapter | null;
    try {
      adapter = await dawnInstance(flags).requestAdapter({ powerPreference: 'high-performance' });
    } catch (err) {
      throw new DeviceError(`could not open GPU adapter ${entry.index} (${entry.name}): ${(err as Error).message}`, { cause: err });
    }
    if (!adapter) throw new DeviceError(`could not open GPU adapter ${entry.index} (${entry.name})`);
    const info = adapter.info;
    out.push({
      ...entry,
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description || info.device || entry.name,
      features: KERNEL_FEATURES.filter((f) => adapter.features.has(f)),
      cpu: /llvmpipe|lavapipe|swiftshader|software/i.test(`${entry.name} ${info.description} ${info.architecture}`),
    });
  }
  return out;
}
