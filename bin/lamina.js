#!/usr/bin/env node
// CommonJS (bin/package.json) on purpose: libuv sizes its thread pool at first use, and Node's ESM
// loader uses it to read an ES module entry before that module's first line runs. The pool runs
// every sharp decode (one thread each) and file read; its default of 4 threads held tile reading to
// 4 cores on a 16-core host. An explicit UV_THREADPOOL_SIZE is left as it is.
const { availableParallelism } = require('node:os');
process.env.UV_THREADPOOL_SIZE ||= String(Math.max(4, availableParallelism()));

// Runs the TypeScript sources directly through tsx, so the installed package needs no build step
// and `lamina` behaves the same from any working directory.
(async () => {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../src/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
