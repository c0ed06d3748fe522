// Entry of the thread that checks model folders (model-check.ts, checkModelFoldersOffThread).
// The engine is TypeScript run through tsx, which a worker does not inherit: register it here
// (as the job workers do), then answer each {id, dirs} with {id, ok, result} or {id, ok, message}.
// Messages sent while the modules load wait on the port.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { checkModelFolders } = await import('./model-check.ts');
parentPort.on('message', ({ id, dirs }) => {
  try {
    parentPort.postMessage({ id, ok: true, result: checkModelFolders(dirs) });
  } catch (e) {
    parentPort.postMessage({
      id,
      ok: false,
      message: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  }
});
