import { LaminaError } from '../errors.ts';

/** A CLI subcommand: parses its own arguments and returns the exit code. */
export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

// Lazy, so `lamina info` never loads onnxruntime or Dawn.
const commands: Record<string, () => Promise<{ command: Command }>> = {
  info: () => import('./commands/info.ts'),
  bench: () => import('./commands/bench.ts'),
  region: () => import('./commands/region.ts'),
  synth: () => import('./commands/synth.ts'),
  analyze: () => import('./commands/analyze.ts'),
  'fit-reference': () => import('./commands/fit-reference.ts'),
  demo: () => import('./commands/demo.ts'),
  serve: () => import('./commands/serve.ts'),
  worker: () => import('./commands/worker.ts'),
  submit: () => import('./commands/submit.ts'),
  model: () => import('./commands/model.ts'),
  gpus: () => import('./commands/gpus.ts'),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = ['Usage: lamina <command> [options]', '', 'Commands:'];
    for (const [n, load] of Object.entries(commands)) {
      try {
        lines.push(`  ${n.padEnd(14)} ${(await load()).command.summary}`);
      } catch {
        // a command whose module is missing is simply not listed
      }
    }
    lines.push('', "Run 'lamina <command> --help' for a command's options.");
    console.log(lines.join('\n'));
    return name ? 0 : 1;
  }
  const load = commands[name];
  if (!load) {
    console.error(`lamina: unknown command '${name}'. Run 'lamina --help' for the list.`);
    return 2;
  }
  const { command } = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    return reportError(err);
  }
}

/** The CLI edge: one line naming what failed, non-zero exit; stack only with LAMINA_DEBUG. */
export function reportError(err: unknown): number {
  if (process.env.LAMINA_DEBUG) console.error(err);
  if (err instanceof LaminaError) {
    console.error(`lamina: ${err.message}`);
    return err.status === 400 ? 2 : 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EISDIR') {
    console.error(`lamina: ${e.message}`);
    return 1;
  }
  console.error(`lamina: unexpected error: ${e?.stack ?? String(err)}`);
  return 1;
}
