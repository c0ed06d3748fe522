/** Traces: a prompt traced (or a graph imported) with its settings, status, tags and notes. */
import { parseJson } from './blobs.ts';
import type { Db } from './database.ts';
import { notFound, StoreError } from './errors.ts';
import type {
  GraphSummary,
  TraceError,
  TraceProgress,
  TraceRecord,
  TraceSettings,
  TraceStatus,
} from './types.ts';

export interface TraceInput {
  projectId: number;
  modelId: number | null;
  transcoderSetId: number | null;
  source: 'trace' | 'import';
  prompt: string;
  tokenIds: number[] | null;
  settings: TraceSettings;
  status: TraceStatus;
  tags?: string[];
  notes?: string;
  timings?: Record<string, number> | null;
  startedAt?: number | null;
  finishedAt?: number | null;
}

export interface TraceFilter {
  projectId?: number;
  /** Substring of the prompt or the notes (case-insensitive). */
  query?: string;
  /** Traces carrying every one of these tags. */
  tags?: string[];
  modelId?: number;
  transcoderSetId?: number;
  status?: TraceStatus;
  /** Traces whose graph contains this feature. */
  feature?: { layer: number; index: number };
  /** 'exclude' (default), 'include' or 'only' traces in the trash. */
  deleted?: 'exclude' | 'include' | 'only';
  limit?: number;
  offset?: number;
}

export interface TraceStatusChange {
  progress?: TraceProgress | null;
  error?: TraceError | null;
  timings?: Record<string, number> | null;
  tokenIds?: number[] | null;
  startedAt?: number | null;
  finishedAt?: number | null;
}

interface Row {
  id: number;
  project_id: number;
  model_id: number | null;
  transcoder_set_id: number | null;
  source: 'trace' | 'import';
  prompt: string;
  token_ids: string | null;
  settings: string;
  status: TraceStatus;
  progress: string | null;
  timings: string | null;
  error_code: string | null;
  error_message: string | null;
  notes: string;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  deleted_at: number | null;
  tags: string | null;
  g_n_layers: number | null;
  g_n_positions: number;
  g_n_features: number;
  g_n_logits: number;
  g_n_nodes: number;
  g_nnz: number;
  g_sidecar_bytes: number;
}

const SELECT = `SELECT t.*,
  (SELECT json_group_array(tag) FROM (SELECT tag FROM trace_tags WHERE trace_id = t.id ORDER BY tag)) AS tags,
  g.n_layers AS g_n_layers, g.n_positions AS g_n_positions, g.n_features AS g_n_features,
  g.n_logits AS g_n_logits, g.n_nodes AS g_n_nodes, g.nnz AS g_nnz, g.sidecar_bytes AS g_sidecar_bytes
  FROM traces t LEFT JOIN graphs g ON g.trace_id = t.id`;

function toRecord(r: Row): TraceRecord {
  const graph: GraphSummary | null =
    r.g_n_layers === null
      ? null
      : {
          nLayers: r.g_n_layers,
          nPositions: r.g_n_positions,
          nFeatures: r.g_n_features,
          nLogits: r.g_n_logits,
          nNodes: r.g_n_nodes,
          nnz: r.g_nnz,
          sidecarBytes: r.g_sidecar_bytes,
        };
  return {
    id: r.id,
    projectId: r.project_id,
    modelId: r.model_id,
    transcoderSetId: r.transcoder_set_id,
    source: r.source,
    prompt: r.prompt,
    tokenIds: parseJson<number[]>(r.token_ids),
    settings: parseJson<TraceSettings>(r.settings)!,
    status: r.status,
    progress: parseJson<TraceProgress>(r.progress),
    timings: parseJson<Record<string, number>>(r.timings),
    error: r.error_code === null ? null : { code: r.error_code, message: r.error_message ?? '' },
    notes: r.notes,
    tags: parseJson<string[]>(r.tags) ?? [],
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    deletedAt: r.deleted_at,
    graph,
  };
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Which transitions a trace's status allows (anything → the same status is a no-op). */
const NEXT: Record<TraceStatus, readonly TraceStatus[]> = {
  queued: ['running', 'cancelled', 'failed', 'done'],
  running: ['done', 'failed', 'cancelled', 'queued'],
  done: [],
  failed: ['queued'],
  cancelled: ['queued'],
};

export class TraceRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  create(input: TraceInput): number {
    return this.db
      .transaction(() => {
        const t = this.now();
        const id = Number(
          this.db
            .prepare(
              `INSERT INTO traces (project_id, model_id, transcoder_set_id, source, prompt, token_ids, settings,
               status, timings, notes, created_at, updated_at, started_at, finished_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              input.projectId,
              input.modelId,
              input.transcoderSetId,
              input.source,
              input.prompt,
              input.tokenIds ? JSON.stringify(input.tokenIds) : null,
              JSON.stringify(input.settings),
              input.status,
              input.timings ? JSON.stringify(input.timings) : null,
              input.notes ?? '',
              t,
              t,
              input.startedAt ?? null,
              input.finishedAt ?? null,
            ).lastInsertRowid,
        );
        if (input.tags?.length) this.addTags(id, input.tags);
        return id;
      })
      .immediate();
  }

  find(id: number): TraceRecord | null {
    const r = this.db.prepare(`${SELECT} WHERE t.id = ?`).get(id) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  get(id: number): TraceRecord {
    const t = this.find(id);
    if (!t) throw notFound('trace', id);
    return t;
  }

  list(f: TraceFilter = {}): { traces: TraceRecord[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    const deleted = f.deleted ?? 'exclude';
    if (deleted === 'exclude') where.push('t.deleted_at IS NULL');
    if (deleted === 'only') where.push('t.deleted_at IS NOT NULL');
    if (f.projectId !== undefined) {
      where.push('t.project_id = ?');
      args.push(f.projectId);
    }
    if (f.modelId !== undefined) {
      where.push('t.model_id = ?');
      args.push(f.modelId);
    }
    if (f.transcoderSetId !== undefined) {
      where.push('t.transcoder_set_id = ?');
      args.push(f.transcoderSetId);
    }
    if (f.status !== undefined) {
      where.push('t.status = ?');
      args.push(f.status);
    }
    if (f.query !== undefined && f.query !== '') {
      where.push("(t.prompt LIKE ? ESCAPE '\\' OR t.notes LIKE ? ESCAPE '\\')");
      const pattern = `%${escapeLike(f.query)}%`;
      args.push(pattern, pattern);
    }
    for (const tag of f.tags ?? []) {
      where.push('EXISTS (SELECT 1 FROM trace_tags x WHERE x.trace_id = t.id AND x.tag = ?)');
      args.push(tag);
    }
    if (f.feature) {
      where.push(
        'EXISTS (SELECT 1 FROM trace_features x WHERE x.layer = ? AND x.feature_index = ? AND x.trace_id = t.id)',
      );
      args.push(f.feature.layer, f.feature.index);
    }
    const clause = where.length ? ` WHERE ${where.join(' AND ')}` : '';
    const total = this.db
      .prepare(`SELECT count(*) FROM traces t${clause}`)
      .pluck()
      .get(...args) as number;
    const rows = this.db
      .prepare(`${SELECT}${clause} ORDER BY t.created_at DESC, t.id DESC LIMIT ? OFFSET ?`)
      .all(...args, f.limit ?? 100, f.offset ?? 0) as Row[];
    return { traces: rows.map(toRecord), total };
  }

  /** Moves the trace to `status` if the transition is allowed; returns the updated record. */
  setStatus(id: number, status: TraceStatus, change: TraceStatusChange = {}): TraceRecord {
    return this.db
      .transaction(() => {
        const cur = this.db.prepare('SELECT status FROM traces WHERE id = ?').pluck().get(id) as
          | TraceStatus
          | undefined;
        if (cur === undefined) throw notFound('trace', id);
        if (cur !== status && !NEXT[cur].includes(status)) {
          throw new StoreError(
            'conflict',
            `trace ${id} is ${cur}; it cannot become ${status}`,
            `trace ${id}`,
          );
        }
        const sets = ['status = ?', 'updated_at = ?'];
        const args: unknown[] = [status, this.now()];
        const json = (v: unknown) => (v === null ? null : JSON.stringify(v));
        const set = (column: string, value: unknown) => {
          if (value === undefined) return;
          sets.push(`${column} = ?`);
          args.push(value);
        };
        set('progress', change.progress === undefined ? undefined : json(change.progress));
        set('timings', change.timings === undefined ? undefined : json(change.timings));
        set('token_ids', change.tokenIds === undefined ? undefined : json(change.tokenIds));
        set('started_at', change.startedAt);
        set('finished_at', change.finishedAt);
        if (change.error !== undefined) {
          sets.push('error_code = ?', 'error_message = ?');
          args.push(change.error?.code ?? null, change.error?.message ?? null);
        }
        this.db.prepare(`UPDATE traces SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
        return this.get(id);
      })
      .immediate();
  }

  /** Progress of a running trace (no status change; ignored when the trace is not running). */
  setProgress(id: number, progress: TraceProgress): void {
    this.db
      .prepare("UPDATE traces SET progress = ?, updated_at = ? WHERE id = ? AND status = 'running'")
      .run(JSON.stringify(progress), this.now(), id);
  }

  /** Notes, the prompt's display text, or the project (moving the trace). */
  update(id: number, changes: { notes?: string; prompt?: string; projectId?: number }): TraceRecord {
    const t = this.get(id);
    this.db
      .prepare('UPDATE traces SET notes = ?, prompt = ?, project_id = ?, updated_at = ? WHERE id = ?')
      .run(
        changes.notes ?? t.notes,
        changes.prompt ?? t.prompt,
        changes.projectId ?? t.projectId,
        this.now(),
        id,
      );
    return this.get(id);
  }

  addTags(id: number, tags: readonly string[]): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO trace_tags (trace_id, tag) VALUES (?, ?)');
    this.db.transaction(() => {
      for (const tag of tags) ins.run(id, tag);
      this.db.prepare('UPDATE traces SET updated_at = ? WHERE id = ?').run(this.now(), id);
    })();
  }

  removeTags(id: number, tags: readonly string[]): void {
    const del = this.db.prepare('DELETE FROM trace_tags WHERE trace_id = ? AND tag = ?');
    this.db.transaction(() => {
      for (const tag of tags) del.run(id, tag);
      this.db.prepare('UPDATE traces SET updated_at = ? WHERE id = ?').run(this.now(), id);
    })();
  }

  /** Every tag in use, with how many (non-deleted) traces carry it. */
  tags(): Array<{ tag: string; count: number }> {
    return this.db
      .prepare(
        `SELECT x.tag AS tag, count(*) AS count FROM trace_tags x JOIN traces t ON t.id = x.trace_id
         WHERE t.deleted_at IS NULL GROUP BY x.tag ORDER BY x.tag`,
      )
      .all() as Array<{ tag: string; count: number }>;
  }

  /** Moves the trace to the trash (undo with `restore`). */
  softDelete(id: number): TraceRecord {
    if (
      this.db
        .prepare('UPDATE traces SET deleted_at = ?, updated_at = ? WHERE id = ?')
        .run(this.now(), this.now(), id).changes === 0
    ) {
      throw notFound('trace', id);
    }
    return this.get(id);
  }

  restore(id: number): TraceRecord {
    if (
      this.db.prepare('UPDATE traces SET deleted_at = NULL, updated_at = ? WHERE id = ?').run(this.now(), id)
        .changes === 0
    ) {
      throw notFound('trace', id);
    }
    return this.get(id);
  }

  /** Deletes the trace's rows; returns its sidecar file (to unlink after the commit), if any. */
  purge(id: number): string | null {
    return this.db
      .transaction(() => {
        const file = this.db.prepare('SELECT sidecar FROM graphs WHERE trace_id = ?').pluck().get(id) as
          | string
          | undefined;
        if (this.db.prepare('DELETE FROM traces WHERE id = ?').run(id).changes === 0)
          throw notFound('trace', id);
        return file ?? null;
      })
      .immediate();
  }

  /** Traces in the trash since before `before`. */
  trashedBefore(before: number): number[] {
    return this.db
      .prepare('SELECT id FROM traces WHERE deleted_at IS NOT NULL AND deleted_at < ?')
      .pluck()
      .all(before) as number[];
  }
}
