/**
 * Interventions run on a traced prompt: what was edited (spec), how the run went (status,
 * progress, error) and what it found (outcome). They live and die with their trace.
 */
import { parseJson } from './blobs.ts';
import type { Db } from './database.ts';
import { notFound, StoreError } from './errors.ts';
import type {
  InterventionOutcome,
  InterventionRecord,
  InterventionSpec,
  InterventionStatus,
  TraceError,
  TraceProgress,
} from './types.ts';

interface Row {
  id: number;
  trace_id: number;
  label: string;
  spec: string;
  status: InterventionStatus;
  progress: string | null;
  error_code: string | null;
  error_message: string | null;
  result: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

function toRecord(r: Row): InterventionRecord {
  return {
    id: r.id,
    traceId: r.trace_id,
    label: r.label,
    spec: JSON.parse(r.spec) as InterventionSpec,
    status: r.status,
    progress: parseJson<TraceProgress>(r.progress),
    error: r.error_code === null ? null : { code: r.error_code, message: r.error_message ?? '' },
    result: parseJson<InterventionOutcome>(r.result),
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** Which status may follow which: a late message never resurrects a finished intervention. */
const NEXT: Record<InterventionStatus, readonly InterventionStatus[]> = {
  queued: ['running', 'cancelled', 'failed'],
  running: ['done', 'failed', 'cancelled', 'queued'],
  done: [],
  failed: [],
  cancelled: [],
};

export class InterventionRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  create(traceId: number, label: string, spec: InterventionSpec): number {
    return Number(
      this.db
        .prepare(
          `INSERT INTO interventions (trace_id, label, spec, status, created_at)
           VALUES (?, ?, ?, 'queued', ?)`,
        )
        .run(traceId, label, JSON.stringify(spec), this.now()).lastInsertRowid,
    );
  }

  find(id: number): InterventionRecord | null {
    const r = this.db.prepare('SELECT * FROM interventions WHERE id = ?').get(id) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  get(id: number): InterventionRecord {
    const r = this.find(id);
    if (!r) throw notFound('intervention', id);
    return r;
  }

  /** A trace's interventions, newest first. */
  list(traceId: number): InterventionRecord[] {
    return (
      this.db.prepare('SELECT * FROM interventions WHERE trace_id = ? ORDER BY id DESC').all(traceId) as Row[]
    ).map(toRecord);
  }

  /** Every intervention with one of these statuses, oldest first (the queue). */
  withStatus(statuses: readonly InterventionStatus[]): InterventionRecord[] {
    if (!statuses.length) return [];
    return (
      this.db
        .prepare(
          `SELECT * FROM interventions WHERE status IN (${statuses.map(() => '?').join(', ')}) ORDER BY id`,
        )
        .all(...statuses) as Row[]
    ).map(toRecord);
  }

  /** Moves to `status` when that transition is allowed; otherwise throws 'conflict'. */
  setStatus(
    id: number,
    status: InterventionStatus,
    change: {
      progress?: TraceProgress | null;
      error?: TraceError | null;
      result?: InterventionOutcome | null;
      startedAt?: number | null;
      finishedAt?: number | null;
    } = {},
  ): InterventionRecord {
    return this.db.transaction(() => {
      const cur = this.get(id);
      if (cur.status !== status && !NEXT[cur.status].includes(status)) {
        throw new StoreError(
          'conflict',
          `intervention ${id} is ${cur.status}; it cannot become ${status}`,
          `intervention ${id}`,
        );
      }
      const sets = ['status = ?'];
      const args: unknown[] = [status];
      const put = (col: string, v: unknown) => {
        sets.push(`${col} = ?`);
        args.push(v);
      };
      if (change.progress !== undefined)
        put('progress', change.progress === null ? null : JSON.stringify(change.progress));
      if (change.error !== undefined) {
        put('error_code', change.error?.code ?? null);
        put('error_message', change.error?.message ?? null);
      }
      if (change.result !== undefined)
        put('result', change.result === null ? null : JSON.stringify(change.result));
      if (change.startedAt !== undefined) put('started_at', change.startedAt);
      if (change.finishedAt !== undefined) put('finished_at', change.finishedAt);
      this.db.prepare(`UPDATE interventions SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
      return this.get(id);
    })();
  }

  setProgress(id: number, progress: TraceProgress): void {
    this.db
      .prepare("UPDATE interventions SET progress = ? WHERE id = ? AND status = 'running'")
      .run(JSON.stringify(progress), id);
  }

  delete(id: number): void {
    if (this.db.prepare('DELETE FROM interventions WHERE id = ?').run(id).changes === 0)
      throw notFound('intervention', id);
  }
}
