/**
 * The thread that checks model folders (model-check.ts, checkModelFoldersOffThread): answers
 * each {id, dirs} with {id, ok, result} or {id, ok, message}. Started through
 * model-check-worker.mjs (tsx) from the sources; bundled as out/app/model-check-worker.mjs by
 * electron/app/build.ts. Messages sent while the modules load wait on the port.
 */
import { parentPort } from 'node:worker_threads';
import { checkModelFolders } from './model-check.ts';

const port = parentPort;
if (!port) throw new Error('model-check-thread.ts must run in a worker thread');

port.on('message', ({ id, dirs }: { id: number; dirs: Parameters<typeof checkModelFolders>[0] }) => {
  try {
    port.postMessage({ id, ok: true, result: checkModelFolders(dirs) });
  } catch (e) {
    port.postMessage({ id, ok: false, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
