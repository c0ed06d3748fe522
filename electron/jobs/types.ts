/**
 * The job system's contracts: the persisted queue the pool runs on (`JobQueueStore`, which the
 * store implements on SQLite; `MemoryJobQueueStore` is the CLI default), job records and
 * progress, and what a job kind's module exports (`JobHandler`, run inside a worker thread).
 *
 * Lifecycle (a state machine the store enforces):
 *
 *   enqueue → queued ──claim──→ running ──complete──→ done
 *                │                 │ ──fail──────→ failed
 *                │                 │ ──cancel────→ cancelled
 *                │                 └ ──interrupt─→ interrupted   (app shut down mid-run)
 *                └──cancel──→ cancelled
 *   recoverInterrupted() at startup: every `running` row (the app died without a clean
 *   shutdown) becomes `interrupted`; requeue(id, {resume}) puts an interrupted, failed or
 *   cancelled job back in the queue (resume: continue from the job's own checkpoint when its
 *   kind has one, e.g. dashboards; otherwise it starts over).
 */

export type MaybePromise<T> = T | Promise<T>;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JobId = number;

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export const TERMINAL_STATES: readonly JobState[] = ['done', 'failed', 'cancelled', 'interrupted'];

/** Which pool of slots runs the job: one job per GPU; CPU jobs as configured. */
export type JobDevice = 'cpu' | 'gpu';

export interface JobError {
  message: string;
  /** EngineError code ('cancelled', 'argument', …), 'crash', 'oom' or 'internal'. */
  code?: string;
}

export interface JobProgress {
  phase: string;
  done: number;
  total: number;
  etaSeconds?: number;
  /** What done/total count (batches, tokens, features…). */
  unit?: string;
  /** Small extra figures (windows, tokens/s…). */
  detail?: Record<string, number | string | boolean>;
}

export interface NewJob {
  kind: string;
  device: JobDevice;
  /** The job's parameters: JSON, persisted, enough to run it again after a restart. */
  params: JsonValue;
  /** Higher runs first (default 0); ties by id. */
  priority?: number;
  /** The trace this job computes, if any (lets the store join jobs and traces). */
  traceId?: number | null;
}

export interface JobRecord {
  id: JobId;
  kind: string;
  device: JobDevice;
  params: JsonValue;
  priority: number;
  traceId: number | null;
  state: JobState;
  /** How many times the job was claimed (1 on its first run). */
  attempts: number;
  /** Set by requeue({resume: true}); the next run continues from its checkpoint. */
  resume: boolean;
  progress: JobProgress | null;
  result: JsonValue | null;
  error: JobError | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface JobListFilter {
  states?: readonly JobState[];
  kind?: string;
  limit?: number;
}

/**
 * The persisted queue. Every method may be synchronous (better-sqlite3) or return a promise.
 * Transitions that do not apply to a job's current state are no-ops (and `cancel` / `requeue`
 * report whether they changed anything), so a late message can never resurrect a job.
 */
export interface JobQueueStore {
  /** Inserts a `queued` job and returns it with its id. */
  enqueue(job: NewJob): MaybePromise<JobRecord>;
  /**
   * Atomically takes the next queued job of `device` whose kind is one of `kinds` (highest
   * priority, then lowest id), marks it `running` (startedAt = now, attempts + 1) and returns
   * it; null when there is none.
   */
  claim(device: JobDevice, kinds: readonly string[]): MaybePromise<JobRecord | null>;
  /** Latest progress of a running job (the pool throttles these to a few per second). */
  updateProgress(id: JobId, progress: JobProgress): MaybePromise<void>;
  /** running → done, with the job's result (JSON summary). */
  complete(id: JobId, result: JsonValue): MaybePromise<void>;
  /** running → failed. */
  fail(id: JobId, error: JobError): MaybePromise<void>;
  /** queued | running | interrupted → cancelled; true when it changed the job. */
  cancel(id: JobId): MaybePromise<boolean>;
  /** running → interrupted (the pool is shutting down while the job runs). */
  interrupt(id: JobId): MaybePromise<void>;
  /** At startup: running → interrupted for every job, then all interrupted jobs, oldest first. */
  recoverInterrupted(): MaybePromise<JobRecord[]>;
  /** interrupted | failed | cancelled → queued (progress, result and error cleared). */
  requeue(id: JobId, opts: { resume: boolean }): MaybePromise<boolean>;
  get(id: JobId): MaybePromise<JobRecord | null>;
  /** Jobs, newest first. */
  list(filter?: JobListFilter): MaybePromise<JobRecord[]>;
}

// ---------------------------------------------------------------------------------------------
// Inside the worker

export interface JobContext {
  readonly jobId: JobId;
  readonly kind: string;
  readonly device: JobDevice;
  /** Aborted on cancel (reason 'cancel') and on shutdown (reason 'shutdown'). */
  readonly signal: AbortSignal;
  /** Continue from the job's checkpoint (requeued with resume). */
  readonly resume: boolean;
  readonly attempt: number;
  /** Intra-op threads the job may use (its share of the cores). */
  readonly threads: number;
  /** Transient inputs given to submit() (not persisted), e.g. a raw graph to re-prune. */
  readonly inputs: unknown;
  /** Reports progress; ETA is derived from the rate within the phase when not given. */
  progress(p: JobProgress): void;
  /** Throws EngineError('cancelled') when the signal is aborted. */
  throwIfCancelled(): void;
  log(message: string): void;
}

export interface JobOutput {
  /** JSON summary, persisted with the job. */
  result: JsonValue;
  /** Heavy data (typed arrays) for the pool's onResult hook; not persisted by the queue. */
  payload?: unknown;
  /** ArrayBuffers inside `payload` to move instead of copy. */
  transfer?: ArrayBuffer[];
}

/** What a job kind's module exports as `default`. */
export interface JobHandler {
  run(params: JsonValue, ctx: JobContext): Promise<JobOutput>;
  /** Frees caches (sessions, models) when the worker is retired. */
  dispose?(): Promise<void> | void;
}

export interface JobKindSpec {
  kind: string;
  /** URL (file: or module specifier) of the module whose default export is the JobHandler. */
  module: string;
  /** The device a job of this kind needs, from its params (default 'cpu'). */
  device?: (params: JsonValue) => JobDevice;
}

// ---------------------------------------------------------------------------------------------
// Messages between the pool and its workers

export interface RunJobMessage {
  type: 'run';
  job: {
    id: JobId;
    kind: string;
    module: string;
    params: JsonValue;
    device: JobDevice;
    resume: boolean;
    attempt: number;
    threads: number;
    inputs: unknown;
  };
}

export type ToWorker =
  | RunJobMessage
  | { type: 'cancel'; id: JobId; reason: 'cancel' | 'shutdown' }
  | { type: 'dispose' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; id: JobId; progress: JobProgress }
  | { type: 'log'; id: JobId; message: string }
  | { type: 'done'; id: JobId; result: JsonValue; payload?: unknown }
  | { type: 'failed'; id: JobId; error: JobError & { stack?: string } }
  | { type: 'aborted'; id: JobId; reason: 'cancel' | 'shutdown' }
  | { type: 'disposed' };
