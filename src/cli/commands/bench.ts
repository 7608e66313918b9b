/**
 * `lamina bench <what>`: a dispatcher; each benchmark is a module in ./bench/ exporting
 * `command: Command` (attention now, encoder later).
 */
import type { Command } from '../main.ts';

const benches: Record<string, () => Promise<{ command: Command }>> = {
  attention: () => import('./bench/attention.ts'),
  encoder: () => import('./bench/encoder.ts'),
};

export const command: Command = {
  summary: 'Benchmarks on this machine (attention: our WebGPU flash attention, TFLOP/s)',
  usage: `lamina bench <${Object.keys(benches).join('|')}> [options]   (lamina bench <what> --help)`,
  async run(argv) {
    const [what, ...rest] = argv;
    const load = what ? benches[what] : undefined;
    if (!load) {
      console.error(`lamina bench: ${what ? `unknown benchmark '${what}'` : 'which benchmark?'}; one of ${Object.keys(benches).join(', ')}`);
      return 2;
    }
    const { command: bench } = await load();
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(`${bench.summary}\n\nUsage: ${bench.usage}`);
      return 0;
    }
    return bench.run(rest);
  },
};
