// Entry of a job worker thread when the sources run through tsx (the CLI, the tests, the dev
// server): a worker does not inherit the parent's module hooks on Node 20 (`execArgv:
// ['--import', 'tsx']` does not load .ts entries either), so register tsx's ESM hooks here, in
// the worker, then load the real entry. The built app (out/app) runs the bundled worker-main.ts
// instead: electron/app/build.ts maps this file to out/app/job-worker.mjs.
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
