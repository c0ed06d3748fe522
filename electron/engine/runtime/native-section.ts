/**
 * Where a worker thread is inside ONNX Runtime's native code, so that the job runner never
 * terminates it there: `worker.terminate()` during a native call (a session's run or creation)
 * does not stop it until the call returns, and then aborts the whole process ("terminate called
 * after throwing an instance of 'Napi::Error'"; onnxruntime-node 1.30 on Node 20). In
 * the desktop app the job workers are threads of the main process, so that would close the app.
 *
 * Two shared Int32s per worker. The first is the depth of native sections in progress, or −1
 * once the runner has claimed the thread for termination, which it may do only at depth 0. The
 * second is set when the runner wants to terminate: from then on no section starts (it throws
 * 'cancelled'), so a job that goes from one native call to the next cannot keep the runner
 * waiting, and a claimed thread stays outside native code until the termination lands.
 *
 * A thread with no guard installed (the main thread, the CLI, tests in process) runs sections
 * unguarded: nothing terminates it.
 */
import { EngineError } from '../errors.ts';

const CLAIMED = -1;

const DEPTH = 0;
const WANTED = 1;

let cell: Int32Array | null = null;

/** Called once by a job worker with the buffer its runner shares (NativeGuard.buffer). */
export function installNativeGuard(buffer: SharedArrayBuffer): void {
  cell = new Int32Array(buffer, 0, 2);
}

/**
 * Runs `call` (which enters native code: a session's run or creation) as a native section:
 * the runner does not terminate this thread until it has ended.
 */
export async function nativeSection<T>(call: () => Promise<T>): Promise<T> {
  const c = cell;
  if (!c) return call();
  for (;;) {
    const depth = Atomics.load(c, DEPTH);
    if (depth === CLAIMED || Atomics.load(c, WANTED) === 1)
      throw new EngineError('cancelled', 'the job was cancelled (its worker is stopping)');
    if (Atomics.compareExchange(c, DEPTH, depth, depth + 1) === depth) break;
  }
  try {
    return await call();
  } finally {
    Atomics.sub(c, DEPTH, 1);
  }
}

/** The runner's side of one worker's guard. */
export class NativeGuard {
  readonly buffer = new SharedArrayBuffer(8);
  private readonly cell = new Int32Array(this.buffer);

  /**
   * Resolves once the worker is claimed for termination: at once when it is outside native
   * code, else when the sections in progress have ended (none starts after this is called; the
   * depth is polled every `pollMs`: a native call cannot be interrupted anyway).
   */
  async claimWhenOutside(pollMs = 20): Promise<void> {
    Atomics.store(this.cell, WANTED, 1);
    for (;;) {
      const v = Atomics.compareExchange(this.cell, DEPTH, 0, CLAIMED);
      if (v === 0 || v === CLAIMED) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
