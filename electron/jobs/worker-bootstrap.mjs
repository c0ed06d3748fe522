// Entry of a job worker thread. The engine is TypeScript run through tsx: a worker does not
// inherit the parent's module hooks on Node 20 (`execArgv: ['--import', 'tsx']` does not load
// .ts entries either), so register tsx's ESM hooks here, in the worker, then load the real
// entry. The packaged app runs this too (tsx is shipped with it; see issue 16).
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
