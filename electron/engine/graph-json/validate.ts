/**
 * Validation helpers for untrusted graph JSON. Every failure is an EngineError naming the
 * field path (e.g. `nodes[12].node_id`) and, when known, the file:
 * - 'header'      the text is not JSON, or a field has the wrong JSON type
 * - 'missing'     a required field is absent
 * - 'config'      a value is invalid (range, duplicate, dangling reference, size limit, `__proto__`)
 * - 'unsupported' a schema_version this reader does not know
 * Nothing is ever evaluated: the text goes through JSON.parse only, and values are read, never
 * called; objects are checked for an own `__proto__` key (JSON.parse creates one as plain data,
 * but copying it into another object would set that object's prototype).
 */
import { EngineError, type EngineErrorCode } from '../errors.ts';
import type { JsonObject, JsonValue } from './types.ts';

export interface ImportLimits {
  /** Characters of JSON text (or bytes of input). Default 2^29 (V8's string limit is about that). */
  maxChars: number;
  maxNodes: number;
  maxLinks: number;
  /** Any string field except `metadata.prompt`. */
  maxStringLength: number;
  maxPromptLength: number;
  /** prompt_tokens, transcoder_list, pinnedIds, each supernode group. */
  maxListLength: number;
  maxSupernodes: number;
  /** Nesting depth of fields kept as opaque JSON (`extra`). */
  maxDepth: number;
  /** Total number of values kept as opaque JSON. */
  maxExtraValues: number;
}

export const DEFAULT_LIMITS: Readonly<ImportLimits> = {
  maxChars: 2 ** 29 - 24,
  maxNodes: 200_000,
  maxLinks: 5_000_000,
  maxStringLength: 10_000,
  maxPromptLength: 1_000_000,
  maxListLength: 200_000,
  maxSupernodes: 10_000,
  maxDepth: 32,
  maxExtraValues: 100_000,
};

export class Checker {
  readonly limits: ImportLimits;
  readonly file?: string;
  private extraBudget: number;

  constructor(limits: Partial<ImportLimits> = {}, file?: string) {
    const merged = { ...DEFAULT_LIMITS };
    for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof ImportLimits>) {
      const v = limits[key];
      if (v === undefined) continue;
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new EngineError('argument', `limit ${key} must be a non-negative integer, got ${v}`, {
          field: `limits.${key}`,
        });
      }
      merged[key] = v;
    }
    this.limits = merged;
    this.file = file;
    this.extraBudget = merged.maxExtraValues;
  }

  fail(code: EngineErrorCode, message: string, field: string): never {
    throw new EngineError(code, message, { file: this.file, field });
  }

  isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  }

  object(v: unknown, field: string): Record<string, unknown> {
    if (v === undefined) this.fail('missing', `${field} is missing`, field);
    if (!this.isObject(v)) this.fail('header', `${field} must be an object, got ${typeName(v)}`, field);
    this.noProto(v, field);
    return v;
  }

  noProto(v: object, field: string): void {
    if (Object.hasOwn(v, '__proto__'))
      this.fail('config', `${field} has a "__proto__" key`, `${field}.__proto__`);
  }

  array(v: unknown, field: string, max: number): unknown[] {
    if (v === undefined) this.fail('missing', `${field} is missing`, field);
    if (!Array.isArray(v)) this.fail('header', `${field} must be an array, got ${typeName(v)}`, field);
    if (v.length > max)
      this.fail('config', `${field} has ${v.length} entries, more than the limit ${max}`, field);
    return v;
  }

  string(v: unknown, field: string, max = this.limits.maxStringLength): string {
    if (v === undefined) this.fail('missing', `${field} is missing`, field);
    if (typeof v !== 'string') this.fail('header', `${field} must be a string, got ${typeName(v)}`, field);
    if (v.length > max)
      this.fail('config', `${field} has ${v.length} characters, more than the limit ${max}`, field);
    return v;
  }

  stringList(v: unknown, field: string, max = this.limits.maxListLength): string[] {
    const a = this.array(v, field, max);
    const out = new Array<string>(a.length);
    for (let i = 0; i < a.length; i++) out[i] = this.string(a[i], `${field}[${i}]`);
    return out;
  }

  finite(v: unknown, field: string): number {
    if (v === undefined) this.fail('missing', `${field} is missing`, field);
    if (typeof v !== 'number') this.fail('header', `${field} must be a number, got ${typeName(v)}`, field);
    if (!Number.isFinite(v)) this.fail('config', `${field} must be finite, got ${v}`, field);
    return v;
  }

  finiteOrNull(v: unknown, field: string): number | null {
    return v === null ? null : this.finite(v, field);
  }

  integer(v: unknown, field: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const x = this.finite(v, field);
    if (!Number.isSafeInteger(x)) this.fail('config', `${field} must be an integer, got ${x}`, field);
    if (x < min || x > max) this.fail('config', `${field} must be in [${min}, ${max}], got ${x}`, field);
    return x;
  }

  boolean(v: unknown, field: string): boolean {
    if (v === undefined) this.fail('missing', `${field} is missing`, field);
    if (typeof v !== 'boolean') this.fail('header', `${field} must be a boolean, got ${typeName(v)}`, field);
    return v;
  }

  /** Validates an arbitrary JSON value kept for re-export (depth, sizes, finite numbers, no __proto__). */
  json(v: unknown, field: string, depth = 0): JsonValue {
    if (depth > this.limits.maxDepth) {
      this.fail('config', `${field} is nested deeper than ${this.limits.maxDepth}`, field);
    }
    if (--this.extraBudget < 0) {
      this.fail('config', `more than ${this.limits.maxExtraValues} values in extra fields`, field);
    }
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return this.finite(v, field);
    if (typeof v === 'string') return this.string(v, field);
    if (Array.isArray(v)) {
      const out: JsonValue[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = this.json(v[i], `${field}[${i}]`, depth + 1);
      return out;
    }
    if (this.isObject(v)) {
      this.noProto(v, field);
      const out: JsonObject = {};
      for (const key of Object.keys(v)) {
        this.string(key, `${field} key`);
        out[key] = this.json(v[key], `${field}.${key}`, depth + 1);
      }
      return out;
    }
    return this.fail('header', `${field} is not a JSON value (${typeName(v)})`, field);
  }
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
