// Entry of the model-check thread when the sources run through tsx (the CLI, the tests, the
// dev server): a worker does not inherit tsx's hooks, so register them here, then load the
// thread's TypeScript. The built app starts the bundled model-check-thread.ts instead
// (electron/app/build.ts maps this file to out/app/model-check-worker.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./model-check-thread.ts');
