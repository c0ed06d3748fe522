/**
 * The API's one error class: what the service throws, what travels as ApiErrorData, and what
 * every client (the Node client, the CLI, the renderer) rejects with. Imports types only, so
 * the renderer's bundle can include it without pulling in Node code.
 */
import type { ApiErrorCode, ApiErrorData } from './contract.ts';

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

/** Rebuilds the error on the client side of a transport. */
export function fromApiErrorData(d: ApiErrorData): ApiError {
  return new ApiError(d.code, d.message, { field: d.field, engineCode: d.engineCode });
}
