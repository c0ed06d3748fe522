/**
 * Decodes big checkpoint tensors to float32 on several threads at once.
 *
 * Opening a model for a GPU decodes every resident weight (bf16 → float32) before it is uploaded:
 * 13.4 GB of float32 for gemma-2-2b and its transcoders, 29 s on one thread of an H200 machine,
 * most of the open. Here a pool of threads decodes whole tensors side by side: a thread reads the
 * tensor's bytes from its file (positioned reads, no shared cursor), decodes them into an array of
 * its own (so the first touches of the fresh pages are paid on that thread too), checks that every
 * value is finite (as readFloat32 does), and hands the array over without a copy. A tensor is one
 * thread's work: ONNX Runtime takes no SharedArrayBuffer-backed tensor, and a model has hundreds
 * of weights to spread over the threads.
 *
 * The pool starts its threads on first use and stops them after IDLE_MS without work; an idle
 * pool does not keep the process alive.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { EngineError } from '../errors.ts';
import { DTYPE_SIZE } from './dtype.ts';
import { assertArrayLength } from './file-reader.ts';
import type { DType, TensorInfo } from './tensor.ts';

/** One tensor to decode: `count` values of `dtype` from `byteOffset` of `file`. */
export interface DecodeRun {
  id: number;
  file: string;
  byteOffset: number;
  dtype: DType;
  count: number;
}

export type DecodeRunReply =
  | { id: number; ok: true; values: Float32Array }
  | { id: number; ok: false; kind: 'nonfinite'; element: number; value: number }
  | { id: number; ok: false; kind: 'truncated' | 'missing' | 'io'; message: string };

const DECODE_WORKER = new URL('./decode-worker.mjs', import.meta.url);

/** Threads are stopped after this long without a run. */
const IDLE_MS = 5_000;

export interface DecodePoolOptions {
  /** Threads at most (default decodeThreads()). */
  threads?: number;
  /** Idle time before the threads stop (default IDLE_MS). */
  idleMs?: number;
}

/** Threads for parallel decoding: `CIRCUIT_DECODE_THREADS`, else the CPUs (at most 16). */
export function decodeThreads(): number {
  const env = Number(process.env.CIRCUIT_DECODE_THREADS);
  if (Number.isInteger(env) && env >= 1) return env;
  return Math.max(1, Math.min(16, os.availableParallelism()));
}

/** Whether `info` can be decoded by the pool: a tensor in a file, of a float dtype. */
export function poolDecodable(info: TensorInfo): boolean {
  return (
    info.location.kind === 'file' && ['F32', 'BF16', 'F16', 'F64', 'F8_E4M3', 'F8_E5M2'].includes(info.dtype)
  );
}

interface TensorTask {
  info: TensorInfo;
  resolve: (values: Float32Array) => void;
  reject: (e: EngineError) => void;
}

interface Thread {
  worker: Worker;
  run: DecodeRun | null;
}

export class DecodePool {
  private readonly threads: Thread[] = [];
  private readonly queue: DecodeRun[] = [];
  private readonly tasks = new Map<number, TensorTask>();
  private nextId = 1;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  readonly size: number;
  private readonly idleMs: number;

  constructor(opts: DecodePoolOptions = {}) {
    this.size = opts.threads ?? decodeThreads();
    this.idleMs = opts.idleMs ?? IDLE_MS;
  }

  /** Threads running now (0 when idle). */
  get running(): number {
    return this.threads.length;
  }

  /**
   * The tensor decoded to float32 (an array moved over from the thread that decoded it). Fails
   * like readFloat32: EngineError naming file and tensor ('bounds' for a NaN/Inf, 'io'/'missing'
   * for the file).
   */
  async decode(info: TensorInfo): Promise<Float32Array> {
    if (this.closed) throw new Error('decode pool is closed');
    const loc = info.location;
    const ctx = { file: info.sourceFile, tensor: info.name };
    if (loc.kind !== 'file' || !poolDecodable(info)) {
      throw new EngineError('argument', `tensor of dtype ${info.dtype} is not decoded by the pool`, ctx);
    }
    const n = info.byteLength / DTYPE_SIZE[info.dtype];
    assertArrayLength(n, `tensor ${info.name}`, ctx);
    return new Promise<Float32Array>((resolve, reject) => {
      const id = this.nextId++;
      this.tasks.set(id, { info, resolve, reject });
      this.queue.push({ id, file: loc.file, byteOffset: loc.byteOffset, dtype: info.dtype, count: n });
      this.pump();
    });
  }

  /** Stops every thread (runs in flight fail). */
  async close(): Promise<void> {
    this.closed = true;
    await this.stopThreads();
  }

  private pump(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    while (this.queue.length) {
      let t = this.threads.find((x) => x.run === null);
      if (!t && this.threads.length < this.size) t = this.startThread();
      if (!t) break;
      const run = this.queue.shift() as DecodeRun;
      t.run = run;
      t.worker.ref();
      t.worker.postMessage(run);
    }
    if (!this.queue.length && this.threads.every((x) => x.run === null)) {
      this.idleTimer = setTimeout(() => void this.stopThreads(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  private startThread(): Thread {
    const worker = new Worker(DECODE_WORKER);
    const thread: Thread = { worker, run: null };
    worker.on('message', (reply: DecodeRunReply) => {
      thread.run = null;
      worker.unref();
      this.settle(reply);
      this.pump();
    });
    const lost = (why: string) => {
      const i = this.threads.indexOf(thread);
      if (i >= 0) this.threads.splice(i, 1);
      const run = thread.run;
      thread.run = null;
      if (run) this.settle({ id: run.id, ok: false, kind: 'io', message: `decode thread ${why}` });
      if (!this.closed) this.pump();
    };
    worker.on('error', (e) => lost(`failed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.threads.push(thread);
    return thread;
  }

  private settle(reply: DecodeRunReply): void {
    const task = this.tasks.get(reply.id);
    if (!task) return;
    this.tasks.delete(reply.id);
    if (reply.ok) {
      task.resolve(reply.values);
      return;
    }
    const ctx = { file: task.info.sourceFile, tensor: task.info.name };
    task.reject(
      reply.kind === 'nonfinite'
        ? new EngineError(
            'bounds',
            `value ${reply.value} at element ${reply.element} is not finite (NaN or ±Inf)`,
            ctx,
          )
        : new EngineError(
            reply.kind === 'truncated' ? 'io' : reply.kind,
            `reading the tensor: ${reply.message}`,
            ctx,
          ),
    );
  }

  private async stopThreads(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((t) => t.worker.terminate()));
    for (const t of threads) {
      if (t.run) this.settle({ id: t.run.id, ok: false, kind: 'io', message: 'decode pool closed' });
    }
  }
}

/**
 * Starts `start(item)` for `items` in order, keeping started-but-not-taken results within
 * `aheadBytes` (at least one is always started), and yields each result in order as it is taken:
 * decodes run ahead of whatever the caller does with each (a GPU upload) without holding more
 * than the budget. A failure is thrown where its result is taken.
 */
export async function* inOrderAhead<T, R>(
  items: readonly T[],
  bytesOf: (item: T) => number,
  start: (item: T) => Promise<R>,
  aheadBytes: number,
): AsyncGenerator<[T, R]> {
  const pending: Array<{ item: T; bytes: number; result: Promise<R> }> = [];
  let next = 0;
  let waiting = 0;
  const fill = () => {
    while (next < items.length && (!pending.length || waiting + bytesOf(items[next]) <= aheadBytes)) {
      const item = items[next++];
      const bytes = bytesOf(item);
      waiting += bytes;
      const result = start(item);
      // Not an unhandled rejection while it waits its turn: it is thrown when taken.
      result.catch(() => {});
      pending.push({ item, bytes, result });
    }
  };
  fill();
  while (pending.length) {
    const { item, bytes, result } = pending.shift() as (typeof pending)[number];
    const value = await result;
    waiting -= bytes;
    fill();
    yield [item, value];
  }
}

let shared: DecodePool | null = null;

/** The process's decode pool (threads started on first use, stopped when idle). */
export function sharedDecodePool(): DecodePool {
  if (!shared) shared = new DecodePool();
  return shared;
}
