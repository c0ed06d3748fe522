/**
 * Typed arrays across threads. Node 20's structured clone writes a typed array view's byte
 * offset and byte length as 32-bit numbers, so a view over more than 4 GiB arrives truncated
 * modulo 2³² (a 39457 × 39457 float32 adjacency, 6.2 GB, arrived with 483113025 values). The
 * ArrayBuffer itself keeps its length when it is transferred. Messages between the runner and
 * its workers therefore carry every view as a record {type, buffer, byteOffset, length}
 * (plain numbers, 64-bit safe) and the receiver rebuilds the view over the same buffer.
 *
 * Only plain objects and arrays are walked; other objects (Map, Set, class instances) pass
 * through unchanged. A Node Buffer comes back as a plain Uint8Array.
 */

const VIEW_TYPES = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

type ViewTypeName = keyof typeof VIEW_TYPES;

const TAG = '__circuitTypedArrayView';

export interface PackedView {
  [TAG]: ViewTypeName;
  buffer: ArrayBufferLike;
  byteOffset: number;
  length: number;
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function viewTypeName(v: ArrayBufferView): ViewTypeName | null {
  for (const name of Object.keys(VIEW_TYPES) as ViewTypeName[]) {
    if (v instanceof VIEW_TYPES[name]) {
      // Buffer (and any other subclass) is sent as its base type
      return v instanceof Uint8Array && name !== 'Uint8ClampedArray' ? 'Uint8Array' : name;
    }
  }
  return null;
}

/** A copy of `value` with every typed array view replaced by a PackedView record. */
export function packViews(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (ArrayBuffer.isView(value)) {
    const name = viewTypeName(value);
    if (name === null) return value; // DataView: not used in job messages
    const packed: PackedView = {
      [TAG]: name,
      buffer: value.buffer,
      byteOffset: value.byteOffset,
      length: (value as unknown as { length: number }).length,
    };
    return packed;
  }
  if (Array.isArray(value)) return value.map(packViews);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = packViews(v);
  return out;
}

function isPackedView(v: Record<string, unknown>): v is Record<string, unknown> & PackedView {
  return typeof v[TAG] === 'string' && Object.hasOwn(VIEW_TYPES, v[TAG] as string);
}

/** The inverse of packViews: every PackedView record becomes its typed array again. */
export function unpackViews(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map(unpackViews);
  if (!isPlainObject(value)) return value;
  if (isPackedView(value)) {
    const Ctor = VIEW_TYPES[value[TAG]] as unknown as new (
      buffer: ArrayBufferLike,
      byteOffset: number,
      length: number,
    ) => ArrayBufferView;
    return new Ctor(value.buffer, value.byteOffset, value.length);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = unpackViews(v);
  return out;
}
