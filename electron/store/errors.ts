/**
 * Failures of the store, each with a stable `code` (the API maps them to its own error codes
 * without parsing messages):
 * - 'not_found'  a row the caller named does not exist
 * - 'conflict'   the request contradicts the stored state (a duplicate name, a trace that is
 *                not in a state that allows the operation)
 * - 'schema'     the database was written by a newer version of the app, or a migration failed
 * - 'corrupt'    stored data is inconsistent (a graph sidecar that is missing or truncated)
 * - 'io'         the data folder or a sidecar file cannot be written or read
 */
export type StoreErrorCode = 'not_found' | 'conflict' | 'schema' | 'corrupt' | 'io';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** The entity or field concerned, e.g. 'trace 12', 'projects.name'. */
  readonly subject?: string;

  constructor(code: StoreErrorCode, message: string, subject?: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.subject = subject;
  }
}

export function isStoreError(e: unknown): e is StoreError {
  return e instanceof StoreError;
}

export function notFound(what: string, id: number | string): StoreError {
  return new StoreError('not_found', `${what} ${id} does not exist`, `${what} ${id}`);
}
