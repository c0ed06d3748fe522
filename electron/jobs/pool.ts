/**
 * The job pool: runs queued jobs on worker threads, a fixed number of slots per device class
 * (one GPU job per GPU; CPU jobs as configured), streaming progress and handling cancel,
 * crashes and shutdown.
 *
 * - Queue: every job lives in a JobQueueStore, claimed as slots free up. Today every caller
 *   (PoolCompute) gives it the in-memory store: the service persists the trace queue itself in
 *   SQLite (see issue 16 on running one queue, not two).
 * - Workers: one job at a time each, kept warm between jobs (a kind may cache models and ONNX
 *   Runtime sessions), retired after `idleWorkerMs`. A worker that crashes (uncaught
 *   exception, process.exit, V8 heap limit from `resourceLimits`) fails its job with the
 *   reason and is replaced by a fresh one when the next job needs it.
 * - Cancel: the job's AbortSignal fires in the worker; a job that has not stopped after
 *   `cancelGraceMs` has its worker terminated. Either way the job ends `cancelled` and nothing
 *   it was writing is committed (kinds write files atomically; results reach the store only on
 *   success).
 * - Shutdown (`close()`): running jobs are stopped the same way and marked `interrupted`;
 *   after a restart `start()` reports them (and any left `running` by a crash) for
 *   `requeue(id, {resume})`.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { BUILTIN_JOB_KINDS } from './kinds/index.ts';
import { MemoryJobQueueStore } from './memory-store.ts';
import type {
  FromWorker,
  JobDevice,
  JobError,
  JobId,
  JobKindSpec,
  JobProgress,
  JobQueueStore,
  JobRecord,
  JsonValue,
  MaybePromise,
  ToWorker,
} from './types.ts';
import { TERMINAL_STATES } from './types.ts';
import { packViews, unpackViews } from './views.ts';

export interface JobPoolOptions {
  store?: JobQueueStore;
  /** Concurrent jobs per device (default cpu: max(1, ⌊cores/4⌋), gpu: 1). */
  slots?: Partial<Record<JobDevice, number>>;
  /** Intra-op threads per job (default cpu: ⌊cores / cpu slots⌋, gpu: 2). */
  threads?: Partial<Record<JobDevice, number>>;
  /** How long a cancelled job may take to stop before its worker is terminated (default 750 ms). */
  cancelGraceMs?: number;
  /** V8 limits of each worker (a job exceeding them fails as out of memory). */
  resourceLimits?: ResourceLimits;
  /** An idle worker is retired after this long (default 60 s). */
  idleWorkerMs?: number;
  /** Job kinds (default: the built-in trace, reprune, dashboards). More with registerKind(). */
  kinds?: readonly JobKindSpec[];
  /**
   * Runs in the main thread when a job succeeds, before the queue marks it done: persist the
   * payload (e.g. the graph) here. Its return value, when given, replaces the stored result.
   * A throw fails the job with its message.
   */
  onResult?: (
    job: JobRecord,
    output: { result: JsonValue; payload?: unknown },
  ) => MaybePromise<JsonValue | undefined>;
  /** Minimum interval between progress writes to the store per job (default 500 ms). */
  progressWriteMs?: number;
  /** The worker entry (default ./worker-bootstrap.mjs). */
  workerScript?: URL;
}

export interface SubmitOptions {
  device?: JobDevice;
  priority?: number;
  traceId?: number | null;
  /** Transient inputs for the worker (structured-cloned, not persisted). */
  inputs?: unknown;
  /** ArrayBuffers inside `inputs` to move to the worker instead of copying. */
  transfer?: ArrayBuffer[];
}

export interface JobPoolEvents {
  progress: [{ id: JobId; kind: string; progress: JobProgress }];
  state: [JobRecord];
  log: [{ id: JobId; message: string }];
  /** A worker died (crash / OOM / terminate); `jobId` is the job it was running, if any. */
  'worker-exit': [{ device: JobDevice; code: number; jobId: JobId | null; error?: string }];
}

interface Slot {
  worker: Worker;
  device: JobDevice;
  job: Running | null;
  ready: boolean;
  exited: boolean;
  lastError?: Error;
  idleTimer?: NodeJS.Timeout;
  disposed?: () => void;
}

interface Running {
  record: JobRecord;
  slot: Slot;
  abortReason?: 'cancel' | 'shutdown';
  graceTimer?: NodeJS.Timeout;
  lastWrite: number;
  lastPhase: string;
  settled: boolean;
}

const DEFAULT_WORKER = new URL('./worker-bootstrap.mjs', import.meta.url);

export class JobPool extends EventEmitter<JobPoolEvents> {
  readonly store: JobQueueStore;
  private readonly kinds = new Map<string, JobKindSpec>();
  private readonly slotsPerDevice: Record<JobDevice, number>;
  private readonly threadsPerDevice: Record<JobDevice, number>;
  private readonly workers = new Set<Slot>();
  private readonly running = new Map<JobId, Running>();
  private readonly inputs = new Map<JobId, { inputs: unknown; transfer?: ArrayBuffer[] }>();
  private readonly waiters = new Map<JobId, ((r: JobRecord) => void)[]>();
  private readonly pendingCancel = new Set<JobId>();
  private pumping = false;
  private pumpAgain = false;
  private closed = false;
  private started = false;

  constructor(private readonly opts: JobPoolOptions = {}) {
    super();
    this.store = opts.store ?? new MemoryJobQueueStore();
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
    if (this.started) this.pump();
  }

  get kindNames(): string[] {
    return [...this.kinds.keys()];
  }

  /**
   * Starts claiming jobs. Returns the jobs a previous run left interrupted (its shutdown, or a
   * crash that left them `running`), for the caller to requeue or cancel.
   */
  async start(): Promise<JobRecord[]> {
    if (this.closed) throw new Error('the job pool is closed');
    const interrupted = this.started ? [] : await this.store.recoverInterrupted();
    this.started = true;
    this.pump();
    return interrupted;
  }

  async submit(kind: string, params: JsonValue, o: SubmitOptions = {}): Promise<JobRecord> {
    if (this.closed) throw new Error('the job pool is closed');
    const spec = this.kinds.get(kind);
    if (!spec) throw new Error(`unknown job kind "${kind}" (known: ${this.kindNames.join(', ')})`);
    const device = o.device ?? spec.device?.(params) ?? 'cpu';
    const record = await this.store.enqueue({
      kind,
      device,
      params,
      priority: o.priority,
      traceId: o.traceId,
    });
    if (o.inputs !== undefined) this.inputs.set(record.id, { inputs: o.inputs, transfer: o.transfer });
    this.emit('state', record);
    if (this.started) this.pump();
    return record;
  }

  /** Resolves with the job's record once it is done, failed, cancelled or interrupted. */
  async wait(id: JobId): Promise<JobRecord> {
    return new Promise((resolve, reject) => {
      // register first, then look: a job that settles in between still wakes this waiter
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
      Promise.resolve(this.store.get(id)).then((r) => {
        if (!r) reject(new Error(`no job ${id}`));
        else if (TERMINAL_STATES.includes(r.state) && !this.running.has(id)) {
          const rest = (this.waiters.get(id) ?? []).filter((w) => w !== resolve);
          if (rest.length) this.waiters.set(id, rest);
          else this.waiters.delete(id);
          resolve(r);
        }
      }, reject);
    });
  }

  /** Cancels a queued, running or interrupted job; false when it had already ended. */
  async cancel(id: JobId): Promise<boolean> {
    const run = this.running.get(id);
    if (run) {
      this.abort(run, 'cancel');
      return true;
    }
    const before = await this.store.get(id);
    if (before?.state === 'running' && this.pumping && !this.closed) {
      // being claimed by this pool right now: cancel it as soon as it is dispatched
      this.pendingCancel.add(id);
      return true;
    }
    const changed = await this.store.cancel(id);
    if (changed) {
      this.inputs.delete(id);
      await this.settled(id);
    }
    return changed;
  }

  /** Puts an interrupted, failed or cancelled job back in the queue. */
  async requeue(id: JobId, opts: { resume: boolean } = { resume: true }): Promise<boolean> {
    const ok = await this.store.requeue(id, opts);
    if (ok) {
      const r = await this.store.get(id);
      if (r) this.emit('state', r);
      if (this.started) this.pump();
    }
    return ok;
  }

  /** Jobs running in this pool now. */
  runningJobs(): JobRecord[] {
    return [...this.running.values()].map((r) => r.record);
  }

  /** Live workers per device (for tests and diagnostics). */
  workerCount(device?: JobDevice): number {
    return [...this.workers].filter((w) => !w.exited && (!device || w.device === device)).length;
  }

  /**
   * Stops claiming, stops running jobs (marked `interrupted`, or `cancelled` with mode
   * 'cancel'), and retires every worker. Queued jobs stay queued in the store.
   */
  async close(opts: { mode?: 'interrupt' | 'cancel' } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const reason = opts.mode === 'cancel' ? 'cancel' : 'shutdown';
    const runs = [...this.running.values()];
    for (const r of runs) this.abort(r, reason);
    await Promise.all(runs.map((r) => this.wait(r.record.id)));
    await Promise.all([...this.workers].map((w) => this.retire(w)));
  }

  // ---------------------------------------------------------------------------------------------

  private abort(run: Running, reason: 'cancel' | 'shutdown'): void {
    if (run.abortReason) return;
    run.abortReason = reason;
    this.send(run.slot, { type: 'cancel', id: run.record.id, reason });
    run.graceTimer = setTimeout(() => {
      if (!run.settled) void run.slot.worker.terminate();
    }, this.opts.cancelGraceMs ?? 750);
  }

  private send(slot: Slot, msg: ToWorker, transfer?: ArrayBuffer[]): void {
    if (!slot.exited) slot.worker.postMessage(msg, transfer);
  }

  private busy(device: JobDevice): number {
    let n = 0;
    for (const r of this.running.values()) if (r.slot.device === device) n++;
    return n;
  }

  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          for (const device of ['gpu', 'cpu'] as const) {
            while (!this.closed && this.busy(device) < this.slotsPerDevice[device]) {
              const job = await this.store.claim(device, this.kindNames);
              if (!job) break;
              if (this.closed) {
                // closed while claiming: hand the job back to the queue untouched
                await this.store.interrupt(job.id);
                await this.store.requeue(job.id, { resume: job.resume });
                break;
              }
              this.dispatch(job);
            }
          }
        } while (this.pumpAgain && !this.closed);
      } catch (e) {
        this.emit('log', { id: -1, message: `job queue error: ${(e as Error).message}` });
      } finally {
        this.pumping = false;
      }
    })();
  }

  private dispatch(job: JobRecord): void {
    const spec = this.kinds.get(job.kind)!;
    let slot = [...this.workers].find((w) => !w.exited && !w.job && w.device === job.device && !w.disposed);
    if (!slot) slot = this.spawn(job.device);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    const run: Running = { record: job, slot, lastWrite: 0, lastPhase: '', settled: false };
    slot.job = run;
    this.running.set(job.id, run);
    this.emit('state', job);
    const extra = this.inputs.get(job.id);
    this.inputs.delete(job.id);
    this.send(
      slot,
      {
        type: 'run',
        job: {
          id: job.id,
          kind: job.kind,
          module: spec.module,
          params: job.params,
          device: job.device,
          resume: job.resume,
          attempt: job.attempts,
          threads: this.threadsPerDevice[job.device],
          inputs: packViews(extra?.inputs),
        },
      },
      extra?.transfer,
    );
    if (this.pendingCancel.delete(job.id)) this.abort(run, 'cancel');
  }

  private spawn(device: JobDevice): Slot {
    const worker = new Worker(this.opts.workerScript ?? DEFAULT_WORKER, {
      resourceLimits: this.opts.resourceLimits,
      workerData: { device },
    });
    const slot: Slot = { worker, device, job: null, ready: false, exited: false };
    this.workers.add(slot);
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (e) => {
      slot.lastError = e;
    });
    worker.on('exit', (code) => void this.onExit(slot, code));
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
    const run = slot.job;
    if (!run || run.record.id !== m.id || run.settled) return;
    const id = run.record.id;
    switch (m.type) {
      case 'progress': {
        run.record.progress = m.progress;
        this.emit('progress', { id, kind: run.record.kind, progress: m.progress });
        const now = performance.now();
        if (
          m.progress.phase !== run.lastPhase ||
          now - run.lastWrite >= (this.opts.progressWriteMs ?? 500) ||
          m.progress.done >= m.progress.total
        ) {
          run.lastPhase = m.progress.phase;
          run.lastWrite = now;
          void Promise.resolve(this.store.updateProgress(id, m.progress)).catch(() => undefined);
        }
        break;
      }
      case 'log':
        this.emit('log', { id, message: m.message });
        break;
      case 'done':
        void this.finish(run, async () => {
          let result = m.result;
          if (this.opts.onResult) {
            const payload = unpackViews(m.payload);
            const replaced = await this.opts.onResult(run.record, { result: m.result, payload });
            if (replaced !== undefined) result = replaced;
          }
          await this.store.complete(id, result);
        });
        break;
      case 'failed':
        void this.finish(run, () => this.store.fail(id, { message: m.error.message, code: m.error.code }));
        break;
      case 'aborted':
        void this.finish(run, () => this.endAborted(id, m.reason));
        break;
    }
  }

  private async endAborted(id: JobId, reason: 'cancel' | 'shutdown'): Promise<void> {
    if (reason === 'shutdown') await this.store.interrupt(id);
    else await this.store.cancel(id);
  }

  /** Ends a running job: `commit` writes its final state; then the slot frees and waiters wake. */
  private async finish(run: Running, commit: () => MaybePromise<unknown>): Promise<void> {
    if (run.settled) return;
    run.settled = true;
    if (run.graceTimer) clearTimeout(run.graceTimer);
    const id = run.record.id;
    try {
      await commit();
    } catch (e) {
      await Promise.resolve(this.store.fail(id, { message: (e as Error).message, code: 'internal' })).catch(
        () => undefined,
      );
    }
    this.running.delete(id);
    if (run.slot.job === run) run.slot.job = null;
    if (!run.slot.exited && !this.closed) this.scheduleIdle(run.slot);
    await this.settled(id);
    this.pump();
  }

  private async settled(id: JobId): Promise<void> {
    const r = await this.store.get(id);
    if (!r) return;
    this.emit('state', r);
    const list = this.waiters.get(id);
    this.waiters.delete(id);
    for (const w of list ?? []) w(r);
  }

  private async onExit(slot: Slot, code: number): Promise<void> {
    slot.exited = true;
    this.workers.delete(slot);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.disposed?.();
    const run = slot.job;
    this.emit('worker-exit', {
      device: slot.device,
      code,
      jobId: run && !run.settled ? run.record.id : null,
      error: slot.lastError?.message,
    });
    if (!run || run.settled) return;
    const id = run.record.id;
    if (run.abortReason) {
      // terminated after the grace period: the cancel (or shutdown) took effect
      await this.finish(run, () => this.endAborted(id, run.abortReason!));
      return;
    }
    await this.finish(run, () => this.store.fail(id, crashError(slot, code, this.opts.resourceLimits)));
  }

  private scheduleIdle(slot: Slot): void {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      if (!slot.job) void this.retire(slot);
    }, this.opts.idleWorkerMs ?? 60_000);
    slot.idleTimer.unref();
  }

  /** Lets the worker's kinds free their caches, then ends the thread. */
  private async retire(slot: Slot): Promise<void> {
    if (slot.exited) return;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    const disposed = new Promise<void>((resolve) => {
      slot.disposed = resolve;
      setTimeout(resolve, 2000).unref();
    });
    if (slot.ready) {
      this.send(slot, { type: 'dispose' });
      await disposed;
    }
    await slot.worker.terminate();
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
