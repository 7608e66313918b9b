import type { Command } from '../main.ts';
import { parseFlags } from '../args.ts';
import { describeAdapters } from '../../../kernels/gpu/adapter-details.ts';

const usage = 'lamina gpus [--backend vulkan|metal|d3d12] [--json]';

export const command: Command = {
  summary: 'List the WebGPU adapters (index for --gpu N / LAMINA_GPU, vendor, architecture, features)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { backend: { type: 'string' }, json: { type: 'boolean' } }, usage);
    const adapters = await describeAdapters({ backend: values.backend as string | undefined });
    if (values.json) {
      console.log(JSON.stringify(adapters, null, 2));
      return adapters.length ? 0 : 1;
    }
    if (!adapters.length) {
      console.error('lamina: no WebGPU adapter found (is a Vulkan driver installed? set XDG_RUNTIME_DIR)');
      return 1;
    }
    for (const a of adapters) {
      console.log(`${a.index}  ${a.description}  vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}, backend ${a.backend}${a.cpu ? ', software' : ''}`);
      console.log(`   features: ${a.features.join(', ') || 'none of shader-f16, subgroups, subgroup-matrix, timestamp-query'}`);
    }
    return 0;
  },
};
