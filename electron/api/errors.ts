/** Typed API errors, and the mapping of every failure below the API to one. */
import { isEngineError } from '../engine/errors.ts';
import { isStoreError } from '../store/errors.ts';
import type { ApiErrorCode, ApiErrorData } from './contract.ts';
import { SchemaError } from './validator.ts';

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly field?: string;
  readonly engineCode?: string;

  constructor(code: ApiErrorCode, message: string, extra: { field?: string; engineCode?: string } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.field = extra.field;
    this.engineCode = extra.engineCode;
  }

  toJSON(): ApiErrorData {
    const out: ApiErrorData = { code: this.code, message: this.message };
    if (this.field !== undefined) out.field = this.field;
    if (this.engineCode !== undefined) out.engineCode = this.engineCode;
    return out;
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

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

/** Rebuilds the error on the client side of a transport. */
export function fromApiErrorData(d: ApiErrorData): ApiError {
  return new ApiError(d.code, d.message, { field: d.field, engineCode: d.engineCode });
}
