/**
 * The persisted job queue on SQLite (the service's queue of traces, interventions and
 * dashboards; the jobs are run by jobs/'s worker runner).
 *
 * - `claim` is one UPDATE … RETURNING, so two processes sharing a library never take the same job.
 * - Transitions apply only from the states listed here (a late message never resurrects a
 *   job), and `cancel` / `requeue` report whether they changed anything:
 *
 *   enqueue → queued ──claim──→ running ──complete──→ done
 *                │                 │ ──fail──────→ failed
 *                │                 │ ──cancel────→ cancelled
 *                │                 └ ──interrupt─→ interrupted   (app shut down mid-run)
 *                └──cancel──→ cancelled
 *   interrupted | failed | cancelled ──requeue──→ queued
 * - `recoverInterrupted` (at startup): rows a dead process left 'running' become 'interrupted'.
 */
import type { JobDevice, JobError, JobId, JobProgress, JsonValue } from '../jobs/types.ts';
import { parseJson } from './blobs.ts';
import type { Db } from './database.ts';

interface Row {
  id: number;
  kind: string;
  device: JobDevice;
  params: string;
  priority: number;
  trace_id: number | null;
  state: JobRecord['state'];
  attempts: number;
  resume: number;
  progress: string | null;
  result: string | null;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

const toRecord = (r: Row): JobRecord => ({
  id: r.id,
  kind: r.kind,
  device: r.device,
  params: JSON.parse(r.params),
  priority: r.priority,
  traceId: r.trace_id,
  state: r.state,
  attempts: r.attempts,
  resume: r.resume === 1,
  progress: parseJson<JobProgress>(r.progress),
  result: parseJson<JsonValue>(r.result),
  error: parseJson<JobError>(r.error),
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface NewJob {
  kind: string;
  device: JobDevice;
  /** The job's parameters: JSON, enough to run it again after a restart. */
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
  /** Set by requeue({resume: true}). */
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

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export class JobRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  enqueue(job: NewJob): JobRecord {
    const id = this.db
      .prepare(
        `INSERT INTO jobs (kind, device, params, priority, trace_id, state, created_at)
         VALUES (?, ?, ?, ?, ?, 'queued', ?)`,
      )
      .run(
        job.kind,
        job.device,
        JSON.stringify(job.params),
        job.priority ?? 0,
        job.traceId ?? null,
        this.now(),
      ).lastInsertRowid;
    return this.get(Number(id))!;
  }

  /**
   * Atomically takes the next queued job of these kinds (highest priority, then lowest id),
   * marks it running (startedAt = now, attempts + 1) and returns it; null when there is none.
   */
  claimAny(kinds: readonly string[]): JobRecord | null {
    if (!kinds.length) return null;
    const r = this.db
      .prepare(
        `UPDATE jobs SET state = 'running', started_at = ?, finished_at = NULL, attempts = attempts + 1
         WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND kind IN (${placeholders(kinds.length)})
         ORDER BY priority DESC, id LIMIT 1)
         RETURNING *`,
      )
      .get(this.now(), ...kinds) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  updateProgress(id: JobId, progress: JobProgress): void {
    this.db
      .prepare("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'")
      .run(JSON.stringify(progress), id);
  }

  complete(id: JobId, result: JsonValue): void {
    this.db
      .prepare(
        "UPDATE jobs SET state = 'done', result = ?, finished_at = ? WHERE id = ? AND state = 'running'",
      )
      .run(JSON.stringify(result), this.now(), id);
  }

  fail(id: JobId, error: JobError): void {
    this.db
      .prepare(
        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE id = ? AND state = 'running'",
      )
      .run(JSON.stringify(error), this.now(), id);
  }

  cancel(id: JobId): boolean {
    return (
      this.db
        .prepare(
          `UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ?
           AND state IN ('queued', 'running', 'interrupted')`,
        )
        .run(this.now(), id).changes > 0
    );
  }

  interrupt(id: JobId): void {
    this.db
      .prepare("UPDATE jobs SET state = 'interrupted', finished_at = ? WHERE id = ? AND state = 'running'")
      .run(this.now(), id);
  }

  recoverInterrupted(): JobRecord[] {
    return this.db
      .transaction(() => {
        this.db
          .prepare("UPDATE jobs SET state = 'interrupted', finished_at = ? WHERE state = 'running'")
          .run(this.now());
        return (
          this.db.prepare("SELECT * FROM jobs WHERE state = 'interrupted' ORDER BY id").all() as Row[]
        ).map(toRecord);
      })
      .immediate();
  }

  requeue(id: JobId, opts: { resume: boolean }): boolean {
    return (
      this.db
        .prepare(
          `UPDATE jobs SET state = 'queued', resume = ?, progress = NULL, result = NULL, error = NULL,
           started_at = NULL, finished_at = NULL WHERE id = ? AND state IN ('interrupted', 'failed', 'cancelled')`,
        )
        .run(opts.resume ? 1 : 0, id).changes > 0
    );
  }

  get(id: JobId): JobRecord | null {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  list(filter: JobListFilter = {}): JobRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.states?.length) {
      where.push(`state IN (${placeholders(filter.states.length)})`);
      args.push(...filter.states);
    }
    if (filter.kind) {
      where.push('kind = ?');
      args.push(filter.kind);
    }
    const clause = where.length ? ` WHERE ${where.join(' AND ')}` : '';
    args.push(filter.limit === undefined ? -1 : Math.max(0, Math.floor(filter.limit)));
    return (
      this.db.prepare(`SELECT * FROM jobs${clause} ORDER BY id DESC LIMIT ?`).all(...args) as Row[]
    ).map(toRecord);
  }

  /** Queued or running jobs of a trace. */
  activeForTrace(traceId: number): JobRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM jobs WHERE trace_id = ? AND state IN ('queued', 'running') ORDER BY id")
        .all(traceId) as Row[]
    ).map(toRecord);
  }

  /** Deletes finished jobs (done, failed, cancelled) that ended before `before`. */
  prune(before: number): number {
    return this.db
      .prepare("DELETE FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished_at < ?")
      .run(before).changes;
  }
}
