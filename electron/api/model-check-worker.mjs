// Entry of the thread that checks model folders (model-check.ts, checkModelFoldersOffThread).
// The engine is TypeScript run through tsx, which a worker does not inherit: register it here
// (as the job workers do), then run the check and post its result or its error.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { checkModelFolders } = await import('./model-check.ts');
try {
  parentPort.postMessage({ ok: true, result: checkModelFolders(workerData) });
} catch (e) {
  parentPort.postMessage({ ok: false, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
