#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so the installed package needs no build step
// and `lamina` behaves the same from any working directory.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
