/**
 * Versioned migrations. The database's `user_version` is the number of the last migration
 * applied; each migration runs in its own transaction together with the version bump, so a
 * crash leaves the database at one version or the next, never in between. Add a migration as
 * a new numbered file and append it here; never edit one that has shipped.
 */
import type Database from 'better-sqlite3';
import { StoreError } from '../errors.ts';
import { migration001 } from './001-initial.ts';
import { migration002 } from './002-interventions.ts';

export interface Migration {
  version: number;
  name: string;
  /** SQL run with `exec` (several statements). */
  sql?: string;
  /** Or code, for data migrations. */
  up?: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [migration001, migration002];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Applies every migration newer than the database; returns the versions applied. */
export function migrate(db: Database.Database, file: string): number[] {
  MIGRATIONS.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new StoreError(
      'schema',
      `the library ${file} has schema version ${current}, newer than this app's ${SCHEMA_VERSION}: update the app`,
      'user_version',
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    // Re-read the version under the write lock: another process may have migrated meanwhile.
    const run = db.transaction(() => {
      if ((db.pragma('user_version', { simple: true }) as number) >= m.version) return false;
      if (m.sql) db.exec(m.sql);
      m.up?.(db);
      db.pragma(`user_version = ${m.version}`);
      return true;
    });
    let ran: boolean;
    try {
      ran = run.immediate();
    } catch (e) {
      throw new StoreError('schema', `migration ${m.version} (${m.name}) failed: ${(e as Error).message}`);
    }
    if (ran) applied.push(m.version);
  }
  return applied;
}
