// Entry of a job worker thread. The engine is TypeScript run through tsx: a worker does not
// inherit the parent's module hooks on Node 20 (`execArgv: ['--import', 'tsx']` does not load
// .ts entries either), so register tsx's ESM hooks here, in the worker, then load the real
// entry. A packaged app (JS build) points the pool at a compiled worker instead.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
