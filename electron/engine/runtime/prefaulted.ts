/**
 * A large zero-filled Float32Array whose memory a worker thread faults in ahead of use.
 *
 * A fresh array of hundreds of MB is mapped lazily: the first write to each 4 KB page stops the
 * writing thread in the kernel to allocate and zero it (gemma-2-2b's 8.5k² adjacency, 289 MB:
 * 0.5–0.9 s of page faults on this machine, more than copying the rows in). Allocated early on
 * shared memory, the pages are touched by a worker meanwhile — while the main thread waits on a
 * GPU's backward runs — so the later writes find them mapped. The worker touches each page with
 * an atomic compare-and-swap of 0 for 0: whatever the main thread has written there stays.
 */
import { Worker } from 'node:worker_threads';

/** Below this the faults cost too little to be worth a thread. */
export const PREFAULT_MIN_BYTES = 64 * 1024 * 1024;

const TOUCH_PAGES = `
const { workerData } = require('node:worker_threads');
const view = new Int32Array(workerData.buffer);
for (let i = 0; i < view.length; i += 1024) Atomics.compareExchange(view, i, 0, 0);
`;

export interface PrefaultedArray {
  array: Float32Array;
  /** Settles when the worker is done (or was not needed); the array is usable at any time. */
  ready: Promise<void>;
}

/**
 * A zeroed Float32Array of `length`, on shared memory faulted in by a worker when it is at least
 * PREFAULT_MIN_BYTES (`CIRCUIT_PREFAULT_MIN_MB` sets another bound, e.g. 0 in tests), else a
 * plain array. `CIRCUIT_PREFAULT=0` always gives a plain one.
 */
export function prefaultedFloat32(length: number): PrefaultedArray {
  const bytes = length * 4;
  const minMb = Number(process.env.CIRCUIT_PREFAULT_MIN_MB);
  const min = process.env.CIRCUIT_PREFAULT_MIN_MB && minMb >= 0 ? minMb * 1024 * 1024 : PREFAULT_MIN_BYTES;
  if (bytes < min || bytes === 0 || process.env.CIRCUIT_PREFAULT === '0') {
    return { array: new Float32Array(length), ready: Promise.resolve() };
  }
  const buffer = new SharedArrayBuffer(bytes);
  const ready = new Promise<void>((resolve) => {
    try {
      const worker = new Worker(TOUCH_PAGES, { eval: true, workerData: { buffer } });
      worker.unref(); // never keeps the process alive
      // A failed worker costs only the faults it would have saved.
      worker.once('error', () => resolve());
      worker.once('exit', () => resolve());
    } catch {
      resolve();
    }
  });
  return { array: new Float32Array(buffer), ready };
}

/** An ArrayBuffer to transfer with postMessage, or none for shared memory (shared, not moved). */
export function transferableBuffers(...views: ArrayBufferView[]): ArrayBuffer[] {
  return views.map((v) => v.buffer).filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
}
