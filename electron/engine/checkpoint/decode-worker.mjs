// Entry of a decode thread when the sources run through tsx (the CLI, the tests): a worker does
// not inherit tsx's hooks, so register them here, then load the thread's TypeScript. The built
// app starts the bundled decode-thread.ts instead (electron/app/build.ts maps this file to
// out/app/decode-worker.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./decode-thread.ts');
