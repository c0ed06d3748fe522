/**
 * The mapping of every failure below the API to an ApiError (server side; it reaches into the
 * engine and the store). The class itself lives in api-error.ts, which clients import.
 */
import { isEngineError } from '../engine/errors.ts';
import { isStoreError } from '../store/errors.ts';
import { ApiError } from './api-error.ts';
import type { ApiErrorCode } from './contract.ts';
import { SchemaError } from './validator.ts';

export { ApiError, fromApiErrorData, isApiError } from './api-error.ts';

/** Any thrown value as an ApiError (unknown failures become 'internal' with their message). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof SchemaError)
    return new ApiError('invalid_params', `invalid params: ${e.message}`, { field: e.path });
  if (isStoreError(e)) {
    const code: ApiErrorCode =
      e.code === 'not_found' ? 'not_found' : e.code === 'conflict' ? 'conflict' : 'storage';
    return new ApiError(code, e.message, { field: e.subject });
  }
  if (isEngineError(e)) {
    return new ApiError('engine', e.message, { field: e.field ?? e.tensor ?? e.file, engineCode: e.code });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError('internal', `internal error: ${message}`);
}
