/** Reading a job's JSON params with errors that name the field. */
import { EngineError } from '../../engine/errors.ts';
import type { JsonValue } from '../types.ts';

export type Params = { [key: string]: JsonValue };

export function asParams(v: JsonValue): Params {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new EngineError('argument', 'job params must be a JSON object', { field: 'params' });
  }
  return v;
}

function str(p: Params, field: string): string {
  const v = p[field];
  if (typeof v !== 'string' || v === '')
    throw new EngineError('argument', `${field} must be a non-empty string`, { field });
  return v;
}

export function optStr(p: Params, field: string): string | undefined {
  return p[field] === undefined || p[field] === null ? undefined : str(p, field);
}

export function optNum(p: Params, field: string): number | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new EngineError('argument', `${field} must be a number`, { field });
  return v;
}

export function optInts(p: Params, field: string): number[] | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) {
    throw new EngineError('argument', `${field} must be an array of integers`, { field });
  }
  return v as number[];
}
