/**
 * `.npy` header parsing (format versions 1, 2 and 3) and the byte transforms needed to
 * present npy data as row-major little-endian (big-endian swap, Fortran-order transpose).
 */
import { EngineError, type EngineErrorContext } from '../errors.ts';
import { copyBytes, DTYPE_SIZE, numElements } from './dtype.ts';
import type { DType } from './tensor.ts';

export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export interface NpyHeader {
  dtype: DType;
  shape: number[];
  fortranOrder: boolean;
  /** data stored big-endian (must be byte-swapped to be read) */
  bigEndian: boolean;
  /** the original descr string, e.g. '<f4' */
  descr: string;
  /** bytes before the array data (magic + version + length + header dict) */
  headerLength: number;
  /** bytes of array data = prod(shape) · size */
  dataLength: number;
}

const DESCR_TYPES: Record<string, DType> = {
  f2: 'F16',
  f4: 'F32',
  f8: 'F64',
  i1: 'I8',
  i2: 'I16',
  i4: 'I32',
  i8: 'I64',
  u1: 'U8',
  u2: 'U16',
  u4: 'U32',
  u8: 'U64',
  b1: 'BOOL',
};

/** Map an npy descr ('<f4', '|u1', '>i8', …) to a dtype + byte order. */
export function npyDescrToDType(
  descr: string,
  context: EngineErrorContext = {},
): { dtype: DType; bigEndian: boolean } {
  const m = /^([<>|=]?)([a-z]\d+)$/.exec(descr);
  const dtype = m ? DESCR_TYPES[m[2]] : undefined;
  if (!m || !dtype) {
    throw new EngineError('dtype', `unsupported npy dtype descr '${descr}'`, { ...context, field: 'descr' });
  }
  const order = m[1];
  return { dtype, bigEndian: order === '>' && DTYPE_SIZE[dtype] > 1 };
}

// --- a small parser for the Python dict literal numpy writes ---------------------------------

type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue };

class PyLiteralParser {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly ctx: EngineErrorContext,
  ) {}

  fail(what: string): never {
    throw new EngineError('header', `malformed npy header: ${what} at character ${this.pos}`, this.ctx);
  }

  private ws(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos])) this.pos++;
  }

  private peek(): string {
    this.ws();
    return this.s[this.pos] ?? '';
  }

  private expect(c: string): void {
    if (this.peek() !== c) this.fail(`expected '${c}'`);
    this.pos++;
  }

  parseTop(): PyValue {
    const v = this.value(0);
    this.ws();
    if (this.pos !== this.s.length) this.fail('unexpected trailing text');
    return v;
  }

  private value(depth: number): PyValue {
    if (depth > 32) this.fail('nesting too deep');
    const c = this.peek();
    if (c === "'" || c === '"') return this.str();
    if (c === '{') return this.dict(depth);
    if (c === '(' || c === '[') return this.seq(depth, c === '(' ? ')' : ']');
    if (/[-+0-9]/.test(c)) return this.num();
    for (const [word, v] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail('unexpected token');
  }

  private str(): string {
    const q = this.s[this.pos++];
    let out = '';
    while (this.pos < this.s.length && this.s[this.pos] !== q) {
      if (this.s[this.pos] === '\\') {
        this.pos++;
        if (this.pos >= this.s.length) break;
      }
      out += this.s[this.pos++];
    }
    if (this.s[this.pos] !== q) this.fail('unterminated string');
    this.pos++;
    return out;
  }

  private num(): number {
    const m = /^[-+]?\d+L?/.exec(this.s.slice(this.pos, this.pos + 40));
    if (!m) this.fail('bad number');
    this.pos += m[0].length;
    const n = Number(m[0].replace('L', ''));
    if (!Number.isSafeInteger(n)) this.fail('number out of range');
    return n;
  }

  private seq(depth: number, close: string): PyValue[] {
    this.pos++;
    const out: PyValue[] = [];
    while (this.peek() !== close) {
      out.push(this.value(depth + 1));
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== close) this.fail(`expected ',' or '${close}'`);
    }
    this.pos++;
    return out;
  }

  private dict(depth: number): { [k: string]: PyValue } {
    this.pos++;
    const out: { [k: string]: PyValue } = Object.create(null);
    while (this.peek() !== '}') {
      const c = this.peek();
      if (c !== "'" && c !== '"') this.fail('expected a string key');
      const k = this.str();
      this.expect(':');
      out[k] = this.value(depth + 1);
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== '}') this.fail("expected ',' or '}'");
    }
    this.pos++;
    return out;
  }
}

/**
 * Bytes needed to know the header length: the 6-byte magic, 2 version bytes and the
 * 2- (v1) or 4-byte (v2, v3) length. Returns the full header length, or throws.
 */
export function npyHeaderLength(prefix: Uint8Array, context: EngineErrorContext = {}): number {
  if (prefix.length < 10) throw new EngineError('truncated', 'npy data ends inside its header', context);
  for (let i = 0; i < 6; i++) {
    if (prefix[i] !== NPY_MAGIC[i]) throw new EngineError('header', 'not an npy array (bad magic)', context);
  }
  const major = prefix[6];
  if (major === 1) return 10 + (prefix[8] | (prefix[9] << 8));
  if (major === 2 || major === 3) {
    if (prefix.length < 12) throw new EngineError('truncated', 'npy data ends inside its header', context);
    const n = (prefix[8] | (prefix[9] << 8) | (prefix[10] << 16)) + prefix[11] * 2 ** 24;
    return 12 + n;
  }
  throw new EngineError('header', `unsupported npy format version ${major}.${prefix[7]}`, context);
}

/** Parse a complete npy header (`bytes` holds at least `npyHeaderLength(bytes)` bytes). */
export function parseNpyHeader(bytes: Uint8Array, context: EngineErrorContext = {}): NpyHeader {
  const headerLength = npyHeaderLength(bytes, context);
  if (bytes.length < headerLength)
    throw new EngineError('truncated', 'npy data ends inside its header', context);
  const start = bytes[6] === 1 ? 10 : 12;
  const raw = bytes.subarray(start, headerLength);
  const text = bytes[6] === 3 ? new TextDecoder('utf-8').decode(raw) : Buffer.from(raw).toString('latin1');
  const dict = new PyLiteralParser(text, context).parseTop();
  if (typeof dict !== 'object' || dict === null || Array.isArray(dict)) {
    throw new EngineError('header', 'npy header is not a dict', context);
  }
  const descr = dict['descr'];
  if (typeof descr !== 'string') {
    throw new EngineError(
      'dtype',
      'npy descr is not a simple dtype string (structured arrays are unsupported)',
      {
        ...context,
        field: 'descr',
      },
    );
  }
  const { dtype, bigEndian } = npyDescrToDType(descr, context);
  const fortran = dict['fortran_order'];
  if (typeof fortran !== 'boolean') {
    throw new EngineError('header', 'npy fortran_order must be True or False', {
      ...context,
      field: 'fortran_order',
    });
  }
  const shapeV = dict['shape'];
  if (
    !Array.isArray(shapeV) ||
    !shapeV.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new EngineError('header', 'npy shape must be a tuple of non-negative integers', {
      ...context,
      field: 'shape',
    });
  }
  const shape = shapeV as number[];
  const dataLength = numElements(shape, context) * DTYPE_SIZE[dtype];
  if (!Number.isSafeInteger(dataLength)) throw new EngineError('shape', 'npy array too large', context);
  return {
    dtype,
    shape,
    fortranOrder: fortran && shape.length > 1,
    bigEndian,
    descr,
    headerLength,
    dataLength,
  };
}

/** Reverse the bytes of each `size`-byte element, in place. */
export function byteSwapInPlace(data: Uint8Array, size: number): void {
  if (size <= 1) return;
  for (let i = 0; i + size <= data.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = data[a];
      data[a] = data[b];
      data[b] = t;
    }
  }
}

/** Column-major (Fortran) bytes of `shape` → row-major bytes. */
export function fortranToRowMajor(data: Uint8Array, shape: readonly number[], size: number): Uint8Array {
  const n = numElements(shape);
  const out = new Uint8Array(n * size);
  if (n === 0) return out;
  const rank = shape.length;
  // strides (in elements) of the Fortran layout
  const fstride = new Array<number>(rank);
  let s = 1;
  for (let d = 0; d < rank; d++) {
    fstride[d] = s;
    s *= shape[d];
  }
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    const so = src * size;
    const dst = i * size;
    for (let b = 0; b < size; b++) out[dst + b] = data[so + b];
    // advance the row-major multi-index (last dim fastest)
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      src += fstride[d];
      if (idx[d] < shape[d]) break;
      src -= fstride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** Bring npy array bytes to row-major little-endian (a copy when a transform is needed). */
export function normalizeNpyData(data: Uint8Array, h: NpyHeader): Uint8Array {
  let out = data;
  if (h.bigEndian) {
    out = copyBytes(data);
    byteSwapInPlace(out, DTYPE_SIZE[h.dtype]);
  }
  if (h.fortranOrder) out = fortranToRowMajor(out, h.shape, DTYPE_SIZE[h.dtype]);
  return out;
}
