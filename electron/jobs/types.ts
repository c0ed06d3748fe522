/**
 * The job system's contracts: what a job kind's module exports (`JobHandler`, run inside a
 * worker thread), the context it runs with, its progress, and the messages between the runner
 * and its workers. The persisted queue of jobs is the store's (store/jobs.ts).
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JobId = number;

/** Which workers run the job: one job per GPU; CPU jobs as configured. */
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

// ---------------------------------------------------------------------------------------------
// Inside the worker

export interface JobContext {
  readonly jobId: JobId;
  readonly kind: string;
  readonly device: JobDevice;
  /** Aborted on cancel (reason 'cancel') and on shutdown (reason 'shutdown'). */
  readonly signal: AbortSignal;
  /** Intra-op threads the job may use (its share of the cores). */
  readonly threads: number;
  /** Transient inputs given to run(), e.g. a raw graph to re-prune. */
  readonly inputs: unknown;
  /** Reports progress; ETA is derived from the rate within the phase when not given. */
  progress(p: JobProgress): void;
  /** Throws EngineError('cancelled') when the signal is aborted. */
  throwIfCancelled(): void;
  log(message: string): void;
}

export interface JobOutput {
  /** JSON summary. */
  result: JsonValue;
  /** Heavy data (typed arrays). */
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
// Messages between the runner and its workers

export interface RunJobMessage {
  type: 'run';
  job: {
    id: JobId;
    kind: string;
    module: string;
    params: JsonValue;
    device: JobDevice;
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
