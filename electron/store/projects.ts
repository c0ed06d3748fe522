/** Projects: named groups of traces. A library always has at least the default project. */
import type { Db } from './database.ts';
import { notFound, StoreError } from './errors.ts';
import type { ProjectRecord } from './types.ts';

export const DEFAULT_PROJECT_NAME = 'Default';

interface Row {
  id: number;
  name: string;
  description: string;
  created_at: number;
  updated_at: number;
  trace_count: number;
}

const SELECT = `SELECT p.id, p.name, p.description, p.created_at, p.updated_at,
  (SELECT count(*) FROM traces t WHERE t.project_id = p.id AND t.deleted_at IS NULL) AS trace_count
  FROM projects p`;

const toRecord = (r: Row): ProjectRecord => ({
  id: r.id,
  name: r.name,
  description: r.description,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  traceCount: r.trace_count,
});

function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class ProjectRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  list(): ProjectRecord[] {
    return (this.db.prepare(`${SELECT} ORDER BY p.name COLLATE NOCASE`).all() as Row[]).map(toRecord);
  }

  find(id: number): ProjectRecord | null {
    const r = this.db.prepare(`${SELECT} WHERE p.id = ?`).get(id) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  get(id: number): ProjectRecord {
    const p = this.find(id);
    if (!p) throw notFound('project', id);
    return p;
  }

  findByName(name: string): ProjectRecord | null {
    const r = this.db.prepare(`${SELECT} WHERE p.name = ? COLLATE NOCASE`).get(name) as Row | undefined;
    return r ? toRecord(r) : null;
  }

  create(name: string, description = ''): ProjectRecord {
    const t = this.now();
    try {
      const id = this.db
        .prepare('INSERT INTO projects (name, description, created_at, updated_at) VALUES (?, ?, ?, ?)')
        .run(name, description, t, t).lastInsertRowid;
      return this.get(Number(id));
    } catch (e) {
      if (isUniqueViolation(e))
        throw new StoreError('conflict', `a project named "${name}" exists`, 'projects.name');
      throw e;
    }
  }

  /** The project of that name, created if missing. */
  ensure(name: string): ProjectRecord {
    return this.db.transaction(() => this.findByName(name) ?? this.create(name)).immediate();
  }

  ensureDefault(): ProjectRecord {
    return this.ensure(DEFAULT_PROJECT_NAME);
  }

  update(id: number, changes: { name?: string; description?: string }): ProjectRecord {
    const p = this.get(id);
    try {
      this.db
        .prepare('UPDATE projects SET name = ?, description = ?, updated_at = ? WHERE id = ?')
        .run(changes.name ?? p.name, changes.description ?? p.description, this.now(), id);
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new StoreError('conflict', `a project named "${changes.name}" exists`, 'projects.name');
      }
      throw e;
    }
    return this.get(id);
  }

  /** Deletes the project and (by cascade) its traces' rows; returns their sidecar files. */
  delete(id: number): string[] {
    return this.db
      .transaction(() => {
        this.get(id);
        const files = this.db
          .prepare('SELECT g.sidecar FROM graphs g JOIN traces t ON t.id = g.trace_id WHERE t.project_id = ?')
          .pluck()
          .all(id) as string[];
        this.db.prepare('DELETE FROM projects WHERE id = ?').run(id);
        return files;
      })
      .immediate();
  }
}
