/**
 * Opening the library database: WAL journal (readers never block the writer, and a crash
 * never corrupts committed data), foreign keys on, a busy timeout so a second process (the
 * CLI while the app runs) waits instead of failing, and the migrations applied.
 */
import os from 'node:os';
import Database from 'better-sqlite3';
import { StoreError } from './errors.ts';
import { migrate, SCHEMA_VERSION } from './migrations/index.ts';

/** 'CWWB' in the SQLite header: marks the file as a Circuit Workbench library. */
export const APPLICATION_ID = 0x43575742;

export interface OpenDatabaseOptions {
  readonly?: boolean;
  /** How long a statement waits for another connection's lock (default 10 s). */
  busyTimeoutMs?: number;
}

export type Db = Database.Database;

export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Db {
  if (os.endianness() !== 'LE') {
    throw new StoreError('io', 'the library stores little-endian arrays; this machine is big-endian');
  }
  let db: Db;
  try {
    db = new Database(file, {
      readonly: opts.readonly ?? false,
      fileMustExist: opts.readonly ?? false,
      timeout: opts.busyTimeoutMs ?? 10_000,
    });
  } catch (e) {
    throw new StoreError('io', `cannot open the library ${file}: ${(e as Error).message}`, file);
  }
  try {
    db.pragma('foreign_keys = ON');
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = (
      db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }
    ).n;
    if (appId !== APPLICATION_ID && (appId !== 0 || version !== 0 || tables > 0)) {
      throw new StoreError(
        'schema',
        `${file} is not a Circuit Workbench library (another SQLite database)`,
        file,
      );
    }
    if (opts.readonly && version !== SCHEMA_VERSION) {
      throw new StoreError(
        'schema',
        version > SCHEMA_VERSION
          ? `the library ${file} has schema version ${version}, newer than this app's ${SCHEMA_VERSION}: update the app`
          : `the library ${file} has schema version ${version}; open it once with the app (or circuit serve) to upgrade it to ${SCHEMA_VERSION}`,
        'user_version',
      );
    }
    if (!opts.readonly) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && file !== ':memory:') {
        throw new StoreError(
          'io',
          `cannot switch ${file} to WAL mode (journal_mode is ${String(mode)})`,
          file,
        );
      }
      // NORMAL in WAL mode: a crash of the process never loses a committed transaction; a power
      // cut may lose the last ones, never consistency.
      db.pragma('synchronous = NORMAL');
      if (appId === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
      migrate(db, file);
    }
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** `PRAGMA integrity_check` and `foreign_key_check`: ['ok'] when the file is sound. */
export function integrityCheck(db: Db): string[] {
  const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  const problems = rows.map((r) => r.integrity_check);
  const fk = db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
  for (const r of fk)
    problems.push(`foreign key: ${r.table} row ${r.rowid} refers to a missing ${r.parent} row`);
  return problems.length === 1 && problems[0] === 'ok' ? ['ok'] : problems.filter((p) => p !== 'ok');
}
