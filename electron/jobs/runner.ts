/**
 * Runs jobs on warm worker threads, a fixed number per device (one GPU job per GPU; CPU jobs
 * as configured). It holds no queue of its own: the caller (the service, whose queue is
 * persisted in the store) awaits `run()`, which waits for a free worker of the device.
 *
 * - Workers: one job at a time each, kept warm between jobs (a kind may cache models and ONNX
 *   Runtime sessions), retired after `idleWorkerMs`. A worker that crashes (uncaught
 *   exception, process.exit, V8 heap limit from `resourceLimits`) fails its job with the
 *   reason and is replaced by a fresh one when the next job needs it.
 * - Cancel: the caller's signal aborts the job's AbortSignal in the worker (a signal aborted
 *   with a ShutdownAbort stops it as a shutdown: see `close()`). `run()` rejects with
 *   EngineError('cancelled') when the job has stopped, or after `cancelGraceMs` if it has not:
 *   a job sees the cancel only between native calls, and one ONNX Runtime run of a real model
 *   takes seconds. Its worker then stays busy until the job has stopped, and is kept warm (a
 *   model open in it is not loaded again); only a job still running after `cancelDrainMs` has
 *   its worker terminated. Nothing the job was writing is committed (kinds write files
 *   atomically), and output that arrives after the rejection is dropped.
 * - A worker is never terminated inside native code (engine/runtime/native-section.ts: that
 *   aborts the whole process); the runner waits for the native call to end first.
 * - `close()` stops running jobs (reason 'shutdown', so a kind may keep its checkpoint),
 *   terminating any still running after `cancelGraceMs`, and retires every worker.
 * - Provider `auto`: a worker started after this process settled it (kinds/index.ts
 *   settleJobDevice) is told the choice (CIRCUIT_AUTO_PROVIDER), so an auto job runs where it
 *   was scheduled instead of probing again and perhaps choosing otherwise.
 */
import os from 'node:os';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { EngineError, isEngineErrorCode } from '../engine/errors.ts';
import { AUTO_PROVIDER_ENV, settledProvider } from '../engine/runtime/auto-provider.ts';
import { NativeGuard } from '../engine/runtime/native-section.ts';
import { ShutdownAbort } from './compute-backend.ts';
import { BUILTIN_JOB_KINDS } from './kinds/index.ts';
import type {
  FromWorker,
  JobDevice,
  JobError,
  JobKindSpec,
  JobProgress,
  JsonValue,
  ToWorker,
} from './types.ts';
import { packViews, unpackViews } from './views.ts';

export interface RunnerOptions {
  /** Concurrent jobs (workers) per device (default cpu: max(1, ⌊cores/4⌋), gpu: 1). */
  slots?: Partial<Record<JobDevice, number>>;
  /** Intra-op threads per job (default cpu: ⌊cores / cpu slots⌋, gpu: 2). */
  threads?: Partial<Record<JobDevice, number>>;
  /** How long the caller of a cancelled job waits for it to stop before `run()` rejects anyway (default 750 ms). */
  cancelGraceMs?: number;
  /** How long a cancelled job may keep running before its worker is terminated (default 120 s). */
  cancelDrainMs?: number;
  /** V8 limits of each worker (a job exceeding them fails as out of memory). */
  resourceLimits?: ResourceLimits;
  /** An idle worker is retired after this long (default 60 s). */
  idleWorkerMs?: number;
  /** Job kinds (default: the built-in ones). More with registerKind(). */
  kinds?: readonly JobKindSpec[];
  /** The worker entry (default ./worker-bootstrap.mjs). */
  workerScript?: URL;
}

export interface RunOptions {
  /** Default: the kind's device for these params. */
  device?: JobDevice;
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
  onLog?: (message: string) => void;
  /** Transient inputs for the worker (structured-cloned). */
  inputs?: unknown;
  /** ArrayBuffers inside `inputs` to move to the worker instead of copying. */
  transfer?: ArrayBuffer[];
}

export interface RunOutput {
  /** The job's JSON summary. */
  result: JsonValue;
  /** Its heavy data (typed arrays moved from the worker), if any. */
  payload: unknown;
}

interface Slot {
  worker: Worker;
  /** Where the worker is inside native code (it is not terminated there). */
  guard: NativeGuard;
  device: JobDevice;
  /** Handed to a caller (running, or about to), or still stopping a cancelled job. */
  busy: boolean;
  job: Active | null;
  ready: boolean;
  exited: boolean;
  /** Being retired or terminated: never handed out again. */
  retiring: boolean;
  /** Its termination is under way (waiting for the worker to leave native code). */
  terminating?: boolean;
  lastError?: Error;
  idleTimer?: NodeJS.Timeout;
  disposed?: () => void;
}

interface Active {
  id: number;
  slot: Slot;
  opts: RunOptions;
  abortReason?: 'cancel' | 'shutdown';
  /** The grace and drain timers of an abort. */
  timers: NodeJS.Timeout[];
  /** Resolves once the worker is done with the job (it reported its end, or exited). */
  ended: Promise<void>;
  /** Settles the caller's promise (the first call only). */
  settle(outcome: { output: RunOutput } | { error: Error }): void;
  /** The worker is done with the job: its slot is free again (warm, unless it exited). */
  finish(): void;
}

interface Waiter {
  device: JobDevice;
  take(slot: Slot): void;
  refuse(error: Error): void;
}

const DEFAULT_WORKER = new URL('./worker-bootstrap.mjs', import.meta.url);

const cancelled = () => new EngineError('cancelled', 'the job was cancelled');

/** A job's failure as the error the in-process backend would have thrown. */
export function jobError(e: JobError): Error & { code: string } {
  const code = e.code ?? 'internal';
  return isEngineErrorCode(code)
    ? new EngineError(code, e.message)
    : Object.assign(new Error(e.message), { code });
}

export class WorkerRunner {
  private readonly kinds = new Map<string, JobKindSpec>();
  private readonly slotsPerDevice: Record<JobDevice, number>;
  private readonly threadsPerDevice: Record<JobDevice, number>;
  private readonly workers = new Set<Slot>();
  private readonly active = new Set<Active>();
  private waiting: Waiter[] = [];
  private nextId = 0;
  private closed = false;

  constructor(private readonly opts: RunnerOptions = {}) {
    const cores = Math.max(1, os.availableParallelism());
    const cpuSlots = Math.max(1, opts.slots?.cpu ?? Math.floor(cores / 4));
    this.slotsPerDevice = { cpu: cpuSlots, gpu: Math.max(0, opts.slots?.gpu ?? 1) };
    this.threadsPerDevice = {
      cpu: Math.max(1, opts.threads?.cpu ?? Math.floor(cores / cpuSlots)),
      gpu: Math.max(1, opts.threads?.gpu ?? 2),
    };
    for (const k of opts.kinds ?? BUILTIN_JOB_KINDS) this.registerKind(k);
  }

  registerKind(spec: JobKindSpec): void {
    this.kinds.set(spec.kind, spec);
  }

  /**
   * Runs one job on a worker of its device once one is free. Resolves with its output; rejects
   * with EngineError('cancelled') when `signal` stopped it, or with the job's error (engine
   * errors keep their code; a crashed worker gives code 'crash' or 'oom').
   */
  async run(kind: string, params: JsonValue, o: RunOptions = {}): Promise<RunOutput> {
    if (this.closed) throw new Error('the job runner is closed');
    const spec = this.kinds.get(kind);
    if (!spec) throw new Error(`unknown job kind "${kind}" (known: ${[...this.kinds.keys()].join(', ')})`);
    const device = o.device ?? spec.device?.(params) ?? 'cpu';
    const slot = await this.acquire(device, o.signal);
    if (this.closed) {
      this.release(slot);
      throw cancelled();
    }
    return new Promise<RunOutput>((resolve, reject) => {
      const onAbort = () =>
        this.abort(job, o.signal?.reason instanceof ShutdownAbort ? 'shutdown' : 'cancel');
      let ended!: () => void;
      let settled = false;
      const job: Active = {
        id: ++this.nextId,
        slot,
        opts: o,
        timers: [],
        ended: new Promise((r) => {
          ended = r;
        }),
        settle: (outcome) => {
          if (settled) return;
          settled = true;
          o.signal?.removeEventListener('abort', onAbort);
          if ('error' in outcome) reject(outcome.error);
          else resolve(outcome.output);
        },
        finish: () => {
          if (!this.active.delete(job)) return;
          for (const t of job.timers) clearTimeout(t);
          slot.job = null;
          ended();
          this.release(slot);
        },
      };
      this.active.add(job);
      slot.job = job;
      this.send(
        slot,
        {
          type: 'run',
          job: {
            id: job.id,
            kind,
            module: spec.module,
            params,
            device,
            threads: this.threadsPerDevice[device],
            inputs: packViews(o.inputs),
          },
        },
        o.transfer,
      );
      if (o.signal?.aborted) onAbort();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Live workers per device (for tests and diagnostics). */
  workerCount(device?: JobDevice): number {
    return [...this.workers].filter((w) => !w.exited && (!device || w.device === device)).length;
  }

  /** Stops running jobs (reason 'shutdown'), refuses waiting callers, and retires every worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.refuse(cancelled());
    const runs = [...this.active];
    for (const r of runs) this.abort(r, 'shutdown');
    await Promise.all(runs.map((r) => r.ended));
    await Promise.all([...this.workers].map((w) => this.retire(w)));
  }

  // ---------------------------------------------------------------------------------------------

  /** A free worker of `device` for the caller: an idle warm one, a new one, or the next to free up. */
  private acquire(device: JobDevice, signal: AbortSignal | undefined): Promise<Slot> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(cancelled());
      const onAbort = () => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        reject(cancelled());
      };
      const waiter: Waiter = {
        device,
        take: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        refuse: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.dispatch(device);
    });
  }

  /** Hands free (or new, within the device's slots) workers to the callers waiting for `device`. */
  private dispatch(device: JobDevice): void {
    while (!this.closed) {
      const waiter = this.waiting.find((w) => w.device === device);
      if (!waiter) return;
      let slot = [...this.workers].find((w) => w.device === device && !w.busy && !w.exited && !w.retiring);
      if (!slot && this.workerCount(device) < this.slotsPerDevice[device]) slot = this.spawn(device);
      if (!slot) return;
      this.waiting = this.waiting.filter((w) => w !== waiter);
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      slot.busy = true;
      waiter.take(slot);
    }
  }

  private release(slot: Slot): void {
    slot.busy = false;
    if (!slot.exited && !this.closed) this.scheduleIdle(slot);
    this.dispatch(slot.device);
  }

  /**
   * Asks the job to stop. A cancel rejects the caller after the grace period and terminates the
   * worker only after the drain period; a shutdown (also of a job already cancelled) terminates
   * it after the grace period.
   */
  private abort(job: Active, reason: 'cancel' | 'shutdown'): void {
    if (job.abortReason === 'shutdown' || job.abortReason === reason) return;
    const first = !job.abortReason;
    job.abortReason = reason;
    if (first) this.send(job.slot, { type: 'cancel', id: job.id, reason });
    const grace = this.opts.cancelGraceMs ?? 750;
    const later = (ms: number, f: () => void) => job.timers.push(setTimeout(f, ms));
    if (reason === 'shutdown') {
      later(grace, () => void this.terminate(job.slot));
      return;
    }
    later(grace, () => {
      job.settle({ error: cancelled() });
      later(this.opts.cancelDrainMs ?? 120_000, () => void this.terminate(job.slot));
    });
  }

  /** Ends a worker's thread once it is outside native code (native-section.ts says why). */
  private async terminate(slot: Slot): Promise<void> {
    if (slot.exited || slot.terminating) return;
    slot.terminating = true;
    slot.retiring = true;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    await slot.guard.claimWhenOutside();
    await slot.worker.terminate();
  }

  private send(slot: Slot, msg: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!slot.exited) slot.worker.postMessage(msg, transfer);
  }

  private spawn(device: JobDevice): Slot {
    let auto: string | undefined;
    try {
      auto = settledProvider('auto');
    } catch {
      // A malformed CIRCUIT_AUTO_PROVIDER: auto jobs report it themselves; other jobs run.
    }
    const guard = new NativeGuard();
    const worker = new Worker(this.opts.workerScript ?? DEFAULT_WORKER, {
      resourceLimits: this.opts.resourceLimits,
      workerData: { device, nativeGuard: guard.buffer },
      env: auto ? { ...process.env, [AUTO_PROVIDER_ENV]: auto } : process.env,
    });
    const slot: Slot = {
      worker,
      guard,
      device,
      busy: false,
      job: null,
      ready: false,
      exited: false,
      retiring: false,
    };
    this.workers.add(slot);
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (e) => {
      slot.lastError = e;
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (m.type === 'ready') {
      slot.ready = true;
      return;
    }
    if (m.type === 'disposed') {
      slot.disposed?.();
      return;
    }
    const job = slot.job;
    if (!job || job.id !== m.id) return;
    switch (m.type) {
      case 'progress':
        job.opts.onProgress?.(m.progress);
        break;
      case 'log':
        job.opts.onLog?.(m.message);
        break;
      case 'done':
        // a job that finished despite a cancel within the grace period is done: its output is
        // complete (after the grace period the caller has been told it was cancelled)
        job.settle({ output: { result: m.result, payload: unpackViews(m.payload) } });
        job.finish();
        break;
      case 'failed':
        job.settle({ error: jobError(m.error) });
        job.finish();
        break;
      case 'aborted':
        job.settle({ error: cancelled() });
        job.finish();
        break;
    }
  }

  private onExit(slot: Slot, code: number): void {
    slot.exited = true;
    this.workers.delete(slot);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.disposed?.();
    const job = slot.job;
    // terminated after a cancel or shutdown: it took effect; otherwise the worker crashed
    if (job) {
      job.settle({
        error: job.abortReason ? cancelled() : jobError(crashError(slot, code, this.opts.resourceLimits)),
      });
      job.finish();
    } else this.dispatch(slot.device);
  }

  private scheduleIdle(slot: Slot): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      if (!slot.busy) void this.retire(slot);
    }, this.opts.idleWorkerMs ?? 60_000);
    slot.idleTimer.unref();
  }

  /** Lets the worker's kinds free their caches, then ends the thread. */
  private async retire(slot: Slot): Promise<void> {
    if (slot.exited || slot.retiring) return;
    slot.retiring = true;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    const disposed = new Promise<void>((resolve) => {
      slot.disposed = resolve;
      setTimeout(resolve, 2000).unref();
    });
    if (slot.ready) {
      this.send(slot, { type: 'dispose' });
      await disposed;
    }
    await this.terminate(slot);
  }
}

function crashError(slot: Slot, code: number, limits: ResourceLimits | undefined): JobError {
  const e = slot.lastError as (Error & { code?: string }) | undefined;
  if (e?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    const mb = limits?.maxOldGenerationSizeMb;
    return {
      code: 'oom',
      message: `the job ran out of memory${mb ? ` (worker heap limit ${mb} MB)` : ''}: ${e.message}`,
    };
  }
  if (e) return { code: 'crash', message: `the job's worker crashed: ${e.message}` };
  return { code: 'crash', message: `the job's worker exited unexpectedly with code ${code}` };
}
