/** A job's JSON params as its kind's typed interface, after one check of their shape. */
import { EngineError } from '../../engine/errors.ts';
import type { JsonValue } from '../types.ts';

export type Params = Record<string, unknown>;

export function paramError(field: string, what: string): EngineError {
  return new EngineError('argument', `${field} must be ${what}`, { field });
}

export function isObject(v: unknown): v is Params {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `v` as an object whose `required` fields are non-empty strings and `optional` ones strings when present. */
export function objectParams(
  v: JsonValue,
  required: readonly string[],
  optional: readonly string[] = [],
): Params {
  if (!isObject(v)) throw paramError('params', 'a JSON object');
  for (const field of required)
    if (typeof v[field] !== 'string' || v[field] === '') throw paramError(field, 'a non-empty string');
  for (const field of optional)
    if (v[field] !== undefined && typeof v[field] !== 'string') throw paramError(field, 'a string');
  return v;
}
