// Worker threads do not inherit the tsx loader that bin/lamina.js registers in the main thread,
// so the worker registers it itself before loading the TypeScript worker body.
import { register } from 'tsx/esm/api';
register();
await import('./token-score-worker.ts');
