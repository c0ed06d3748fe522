/**
 * The service's one job queue, persisted in the store (store.jobs): traces, interventions and
 * dashboards run one at a time through the compute backend (worker threads in the app and
 * `circuit serve`). queued → running (progress events) → done | failed (readable reason) |
 * cancelled. Interventions are short and interactive, so they go ahead of queued traces.
 *
 * Work a crash left running is queued again when the service starts (failed after
 * MAX_ATTEMPTS); work interrupted by a clean shutdown goes back to the queue at once. How each
 * kind runs is its domain's (handlers/traces.ts, interventions.ts, features.ts): a `JobRun`.
 */
import type { TraceProgress } from '../engine/attribution/defaults.ts';
import { EngineError, isEngineError } from '../engine/errors.ts';
import { ShutdownAbort } from '../jobs/compute-backend.ts';
import type { JobRecord } from '../store/jobs.ts';
import type { Store } from '../store/store.ts';
import type { TraceError } from '../store/types.ts';
import type { ServiceContext } from './context.ts';
import { toApiError } from './errors.ts';

/** A trace whose runs were interrupted this many times (crash or shutdown) is failed. */
export const MAX_ATTEMPTS = 3;

/** What a running job computes, so a cancel or delete of that thing can find and stop it. */
export interface RunningWork {
  traceId?: number;
  interventionId?: number;
  dashboardsSetId?: number;
  projectId?: number;
  /** The cancel's message: "trace 3 was cancelled". */
  cancelMessage: string;
}

export interface RunningJob extends RunningWork {
  job: JobRecord;
  controller: AbortController;
  reason: 'cancel' | 'shutdown' | null;
  done: Promise<void>;
}

/** How a job's work (a trace, an intervention…) ends when the job throws. */
export interface JobOutcomes {
  /** False when the work was deleted while it ran. */
  exists(): boolean;
  /** The service is shutting down: back to queued. */
  requeue(): void;
  cancelled(now: number): void;
  failed(now: number, error: TraceError): void;
}

export type JobRun = (job: JobRecord, queue: JobQueue) => Promise<void>;

/** What a job computes a status for: the store's traces or interventions. */
interface StatusRepo<R> {
  find(id: number): R | null;
  setStatus(
    id: number,
    status: 'queued' | 'cancelled' | 'failed',
    change: { progress: null; startedAt?: null; finishedAt?: number; error?: TraceError },
  ): R;
}

/** The outcomes of a job that computes record `id` of `repo`, each change announced by `updated`. */
export function statusOutcomes<R>(repo: StatusRepo<R>, id: number, updated: (r: R) => unknown): JobOutcomes {
  return {
    exists: () => repo.find(id) !== null,
    requeue: () => void repo.setStatus(id, 'queued', { progress: null, startedAt: null }),
    cancelled: (now) => void updated(repo.setStatus(id, 'cancelled', { progress: null, finishedAt: now })),
    failed: (now, error) =>
      void updated(repo.setStatus(id, 'failed', { progress: null, finishedAt: now, error })),
  };
}

/** The trace or intervention an interrupted job computes, while it is still queued or running. */
function interruptedWork(
  store: Store,
  job: JobRecord,
): { repo: StatusRepo<unknown>; id: number; what: string } | null {
  const active = (r: { status: string } | null) => r?.status === 'running' || r?.status === 'queued';
  if (job.kind === 'intervene') {
    const id = (job.params as { interventionId?: number } | null)?.interventionId;
    const iv = typeof id === 'number' ? store.interventions.find(id) : null;
    return iv && active(iv) ? { repo: store.interventions, id: iv.id, what: 'this' } : null;
  }
  const t = store.traces.find(job.traceId!);
  return t && active(t) ? { repo: store.traces, id: t.id, what: 'this trace' } : null;
}

export class JobQueue {
  running: RunningJob | null = null;
  private loop: Promise<void> | null = null;
  private kickAgain = false;
  private started = false;
  private closed = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly runs: Record<string, JobRun>,
    private readonly progressWriteMs: number,
  ) {}

  /** Recovers the work a previous process left running or interrupted, then starts the loop. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const { store } = this.ctx;
    for (const job of store.jobs.recoverInterrupted()) {
      if (job.kind === 'dashboards') {
        // it continues from its checkpoint (store.jobCheckpoint), if it saved one
        if (job.attempts >= MAX_ATTEMPTS) store.jobs.cancel(job.id);
        else store.jobs.requeue(job.id, { resume: true });
        continue;
      }
      if (job.kind === 'trace' ? job.traceId === null : job.kind !== 'intervene') continue; // not a run of ours
      const work = interruptedWork(store, job);
      if (!work) {
        store.jobs.cancel(job.id); // its work was finished, cancelled or deleted meanwhile
      } else if (job.attempts >= MAX_ATTEMPTS) {
        store.jobs.cancel(job.id);
        const message = `the app stopped ${job.attempts} times while ${work.what} ran`;
        work.repo.setStatus(work.id, 'failed', {
          progress: null,
          finishedAt: store.now(),
          error: { code: 'interrupted', message },
        });
      } else {
        store.jobs.requeue(job.id, { resume: false });
        work.repo.setStatus(work.id, 'queued', { progress: null, startedAt: null });
      }
    }
    this.kick();
  }

  /** Starts the loop if it is idle; if it is running, makes it look again before it stops. */
  kick(): void {
    if (this.closed || !this.started) return;
    if (this.loop) {
      // The loop may already have found the queue empty and be about to stop: without this,
      // work queued in that instant would wait for the next kick.
      this.kickAgain = true;
      return;
    }
    this.kickAgain = false;
    // The loop starts on a later turn of the event loop, so whoever queued the work gets its
    // answer before the work's first event; `.finally` runs after the assignment.
    this.loop = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.drain())
      .finally(() => {
        this.loop = null;
        if (this.kickAgain) this.kick();
      });
  }

  private async drain(): Promise<void> {
    try {
      while (!this.closed) {
        const job = this.ctx.store.jobs.claimAny(Object.keys(this.runs));
        if (!job) break;
        await this.runs[job.kind](job, this);
      }
    } catch (e) {
      this.ctx.backgroundError(e);
    }
  }

  /** Resolves when the queue is empty and nothing runs. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** Aborts the running job (if any) and waits up to `waitMs` for it to end. */
  async stop(reason: 'cancel' | 'shutdown', waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    const r = this.running;
    if (!r) return;
    r.reason = reason;
    r.controller.abort(
      reason === 'shutdown'
        ? new ShutdownAbort(r.cancelMessage)
        : new EngineError('cancelled', r.cancelMessage),
    );
    await Promise.race([r.done, new Promise((resolve) => setTimeout(resolve, waitMs).unref())]);
  }

  /** Stops taking jobs; the running one goes back to the queue. */
  async close(): Promise<void> {
    this.closed = true;
    await this.stop('shutdown');
    await this.loop;
  }

  /**
   * Runs `job` as the running one: `body` does the work (its signal aborts on cancel and
   * shutdown); a throw ends it back in the queue (shutdown), cancelled, or failed with a
   * readable reason, through `outcomes`.
   */
  async run(
    job: JobRecord,
    work: RunningWork,
    outcomes: JobOutcomes,
    body: (running: RunningJob) => Promise<void>,
  ): Promise<void> {
    let settle!: () => void;
    const running: RunningJob = {
      ...work,
      job,
      controller: new AbortController(),
      reason: null,
      done: new Promise<void>((resolve) => {
        settle = resolve;
      }),
    };
    this.running = running;
    try {
      await body(running);
    } catch (e) {
      this.settleThrown(job, running, e, outcomes);
    } finally {
      this.running = null;
      settle();
    }
  }

  private settleThrown(job: JobRecord, running: RunningJob, e: unknown, work: JobOutcomes): void {
    const { store } = this.ctx;
    const now = store.now();
    const still = work.exists();
    if (running.reason === 'shutdown') {
      store.jobs.interrupt(job.id);
      if (still) work.requeue();
    } else if (running.reason === 'cancel' || (isEngineError(e) && e.code === 'cancelled')) {
      store.jobs.cancel(job.id);
      if (still) work.cancelled(now);
    } else {
      const err = toApiError(e);
      const error = { code: err.engineCode ?? err.code, message: err.message };
      store.jobs.fail(job.id, error);
      if (still) work.failed(now, error);
      if (err.code === 'internal') this.ctx.backgroundError(e);
    }
  }

  /**
   * The one progress throttle: passes a report to `write` on a phase change, at the end of a
   * phase, or `intervalMs` (default: the service's progressWriteMs) after the last one passed.
   */
  throttle(write: (p: TraceProgress) => void, intervalMs = this.progressWriteMs): (p: TraceProgress) => void {
    let last = 0;
    let phase = '';
    return (p) => {
      const now = Date.now();
      if (p.phase === phase && now - last < intervalMs && p.done !== p.total) return;
      last = now;
      phase = p.phase;
      write(p);
    };
  }
}
