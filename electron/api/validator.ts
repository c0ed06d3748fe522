/**
 * A small typed validator for untrusted input at the API boundary. Each schema both checks a
 * value and gives its TypeScript type (`Infer<typeof schema>`). Objects are strict: unknown
 * fields are errors (a typo in a parameter name must not be silently ignored). Every failure is
 * a SchemaError naming the path of the offending field, e.g. `settings.nodeThreshold`.
 */

export class SchemaError extends Error {
  constructor(
    /** Dotted path of the field ('' for the value itself). */
    readonly path: string,
    message: string,
  ) {
    super(path ? `${path} ${message}` : message);
    this.name = 'SchemaError';
  }
}

export interface Schema<T> {
  parse(value: unknown, path?: string): T;
  /** Short description for messages, e.g. 'a string', 'an integer in [0, 100]'. */
  readonly expects: string;
}

export interface OptionalSchema<T> extends Schema<T | undefined> {
  readonly optional: true;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Shape = Record<string, Schema<unknown>>;
type RequiredKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalSchema<unknown> ? never : K;
}[keyof S];
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never;
}[keyof S];
export type ObjectOf<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> }
>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

function fail(path: string, expects: string, got: unknown): never {
  throw new SchemaError(path || '(value)', `must be ${expects} (got ${describe(got)})`);
}

const join = (path: string, key: string | number) =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

function make<T>(expects: string, parse: (v: unknown, path: string) => T): Schema<T> {
  return { expects, parse: (v, path = '') => parse(v, path) };
}

export interface StringOptions {
  min?: number;
  max?: number;
  pattern?: RegExp;
  /** Shown instead of the pattern in messages. */
  patternName?: string;
}

export function string(o: StringOptions = {}): Schema<string> {
  const max = o.max ?? 10_000;
  const min = o.min ?? 0;
  const expects =
    o.patternName ??
    (min > 0 ? `a string of ${min} to ${max} characters` : `a string of at most ${max} characters`);
  return make(expects, (v, path) => {
    if (typeof v !== 'string' || v.length < min || v.length > max) fail(path, expects, v);
    if (o.pattern && !o.pattern.test(v)) fail(path, expects, v);
    return v;
  });
}

export interface NumberOptions {
  min?: number;
  max?: number;
  int?: boolean;
}

export function number(o: NumberOptions = {}): Schema<number> {
  const kind = o.int ? 'an integer' : 'a number';
  const range =
    o.min !== undefined && o.max !== undefined
      ? ` in [${o.min}, ${o.max}]`
      : o.min !== undefined
        ? ` ≥ ${o.min}`
        : o.max !== undefined
          ? ` ≤ ${o.max}`
          : '';
  const expects = `${kind}${range}`;
  return make(expects, (v, path) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, expects, v);
    if (o.int && !Number.isSafeInteger(v)) fail(path, expects, v);
    if ((o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max)) fail(path, expects, v);
    return v;
  });
}

export const int = (o: Omit<NumberOptions, 'int'> = {}) => number({ ...o, int: true });
/** A row id: a positive safe integer. */
export const id = () => int({ min: 1 });

export function boolean(): Schema<boolean> {
  return make('true or false', (v, path) => {
    if (typeof v !== 'boolean') fail(path, 'true or false', v);
    return v;
  });
}

export function oneOf<const T extends readonly string[]>(values: T): Schema<T[number]> {
  const expects = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return make(expects, (v, path) => {
    if (typeof v !== 'string' || !values.includes(v)) fail(path, expects, v);
    return v as T[number];
  });
}

export function optional<T>(s: Schema<T>): OptionalSchema<T> {
  return {
    expects: s.expects,
    optional: true,
    parse: (v, path = '') => (v === undefined ? undefined : s.parse(v, path)),
  };
}

export function nullable<T>(s: Schema<T>): Schema<T | null> {
  return make(`${s.expects} or null`, (v, path) => (v === null ? null : s.parse(v, path)));
}

export function array<T>(item: Schema<T>, o: { min?: number; max?: number } = {}): Schema<T[]> {
  const max = o.max ?? 100_000;
  const expects = `a list of at most ${max} items (${item.expects})`;
  return make(expects, (v, path) => {
    if (!Array.isArray(v) || v.length > max || v.length < (o.min ?? 0)) fail(path, expects, v);
    return v.map((x, i) => item.parse(x, join(path, i)));
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const expects = keys.length ? `an object with fields ${keys.join(', ')}` : 'an object with no fields';
  return make(expects, (v, path) => {
    if (!isPlainObject(v)) fail(path, 'an object', v);
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(shape, k)) {
        const known = keys.length ? `; known fields: ${keys.join(', ')}` : '';
        throw new SchemaError(join(path, k), `is not a known field${known}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const s = shape[k];
      const x = v[k];
      if (x === undefined && !('optional' in s))
        throw new SchemaError(join(path, k), `is required (${s.expects})`);
      const parsed = s.parse(x, join(path, k));
      if (parsed !== undefined) out[k] = parsed;
    }
    return out as ObjectOf<S>;
  });
}

/** An object used as a map: keys checked by `key`, at most `maxKeys` entries. */
export function record<T>(
  value: Schema<T>,
  o: { key?: Schema<string>; maxKeys?: number } = {},
): Schema<Record<string, T>> {
  const maxKeys = o.maxKeys ?? 100_000;
  const expects = `an object of at most ${maxKeys} entries`;
  return make(expects, (v, path) => {
    if (!isPlainObject(v)) fail(path, expects, v);
    const keys = Object.keys(v);
    if (keys.length > maxKeys) fail(path, expects, v);
    const out: Record<string, T> = Object.create(null);
    for (const k of keys) {
      if (k === '__proto__') throw new SchemaError(join(path, k), 'is not allowed as a key');
      o.key?.parse(k, `${path} key "${k.slice(0, 60)}"`);
      out[k] = value.parse(v[k], join(path, k));
    }
    return { ...out };
  });
}

/** Any JSON value (plain data, bounded depth), for opaque payloads. */
export function json(o: { maxDepth?: number } = {}): Schema<unknown> {
  const maxDepth = o.maxDepth ?? 32;
  const check = (v: unknown, path: string, depth: number): void => {
    if (depth > maxDepth) throw new SchemaError(path, `nests deeper than ${maxDepth} levels`);
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) fail(path, 'a finite number', v);
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        check(x, join(path, i), depth + 1);
      });
      return;
    }
    if (!isPlainObject(v)) fail(path, 'JSON data', v);
    for (const k of Object.keys(v)) {
      if (k === '__proto__') throw new SchemaError(join(path, k), 'is not allowed as a key');
      check(v[k], join(path, k), depth + 1);
    }
  };
  return make('JSON data', (v, path) => {
    check(v, path, 0);
    return v;
  });
}

/** A refined schema whose check also proves a narrower type (e.g. a discriminated union). */
export function narrow<T, U extends T>(s: Schema<T>, check: (v: T) => string | null): Schema<U> {
  return refine(s, check) as Schema<U>;
}

/** A schema with an extra check on the parsed value (`check` returns an error message or null). */
export function refine<T>(s: Schema<T>, check: (v: T) => string | null): Schema<T> {
  return make(s.expects, (v, path) => {
    const parsed = s.parse(v, path);
    const problem = check(parsed);
    if (problem) throw new SchemaError(path || '(value)', problem);
    return parsed;
  });
}
