import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { startServer } from '../../api/server.ts';

const usage = 'lamina serve [--port N] [--host addr]';

export const command: Command = {
  summary: 'Run the HTTP API and viewer (port: --port, else PORT, else 8080)',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { port: { type: 'string' }, host: { type: 'string' } }, usage);
    const port = numberFlag('port', values.port as string | undefined, Number(process.env.PORT) || 8080, 0, 65535);
    const server = await startServer({ port, host: (values.host as string | undefined) ?? process.env.HOST ?? '0.0.0.0' });
    console.log(`lamina serve: ${server.url} (viewer at ${server.url}/, API at ${server.url}/api, OpenAPI at ${server.url}/api/openapi.json)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await server.close();
    console.log('lamina serve: stopped');
    // Connections BullMQ duplicated internally may still be retrying an unreachable Redis.
    process.exit(0);
  },
};
