/**
 * DType sizes, decoding of every safetensors dtype to float32, and float32 → F16/BF16/F8
 * encoding with round-to-nearest-even (bit-exact with torch's conversions).
 *
 * All multi-byte data is little-endian. Input bytes may be unaligned for their dtype
 * (foreign writers, subarrays of a file buffer): they are copied before typed views are made.
 */
import { EngineError, type EngineErrorContext } from '../errors.ts';
import type { DType } from './tensor.ts';

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
});

export const ALL_DTYPES: readonly DType[] = Object.freeze(Object.keys(DTYPE_SIZE) as DType[]);

/** Bytes per element of `dtype`. */
export function dtypeSize(dtype: DType): number {
  return DTYPE_SIZE[dtype];
}

/** True when `s` is one of the safetensors dtype names. */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_SIZE, s);
}

/** True for the floating-point dtypes. */
export function isFloatDType(dtype: DType): boolean {
  return (
    dtype === 'F16' ||
    dtype === 'BF16' ||
    dtype === 'F32' ||
    dtype === 'F64' ||
    dtype === 'F8_E4M3' ||
    dtype === 'F8_E5M2'
  );
}

/**
 * Number of elements of `shape` (1 for a scalar). Throws EngineError('shape') when a dim is
 * not a non-negative integer or the product exceeds 2^53.
 */
export function numElements(shape: readonly number[], context: EngineErrorContext = {}): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new EngineError(
        'shape',
        `invalid dimension ${String(d)} in shape [${shape.join(', ')}]`,
        context,
      );
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new EngineError('shape', `shape [${shape.join(', ')}] has too many elements`, context);
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// scalar bit conversions

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → bfloat16 bits, round-to-nearest-even; NaN → 0x7FC0 (sign kept), as torch. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) & 0x8000) | 0x7fc0;
  const bias = ((u >>> 16) & 1) + 0x7fff;
  return ((u + bias) >>> 16) & 0xffff;
}

/** bfloat16 bits → float32 value (exact). */
export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Generic float32 → small float (sign, `ebits` exponent bits, `mbits` mantissa bits, IEEE
 * subnormals) with round-to-nearest-even. All arithmetic is exact in float64.
 * `overflow` is the magnitude bit pattern for values beyond the largest finite value.
 */
function encodeMinifloat(
  x: number,
  ebits: number,
  mbits: number,
  nanBits: number,
  overflow: 'inf' | 'nan',
): number {
  const signBit = 1 << (ebits + mbits);
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  const sign = u >>> 31 ? signBit : 0;
  const expMask = (1 << ebits) - 1;
  const infBits = expMask << mbits;
  if (Number.isNaN(x)) return sign | nanBits;
  const a = Math.abs(f32Scratch[0]);
  if (a === Number.POSITIVE_INFINITY) return sign | (overflow === 'inf' ? infBits : nanBits);
  const bias = (1 << (ebits - 1)) - 1;
  const minNormal = 2 ** (1 - bias);
  let bits: number;
  if (a < minNormal) {
    // subnormal (may round up into the smallest normal: q === 2^mbits encodes that exactly)
    const step = 2 ** (1 - bias - mbits);
    bits = roundHalfEven(a / step);
  } else {
    let e = ((u >>> 23) & 0xff) - 127; // a is a normal float32 here
    const m = a / 2 ** e; // [1, 2)
    let q = roundHalfEven((m - 1) * 2 ** mbits);
    if (q === 1 << mbits) {
      q = 0;
      e += 1;
    }
    const be = e + bias;
    if (be > expMask || (be === expMask && overflow === 'inf')) {
      return sign | (overflow === 'inf' ? infBits : nanBits);
    }
    bits = (be << mbits) | q;
    // E4M3fn: exponent 1111 with mantissa 111 is NaN; rounding into it yields NaN (as torch).
  }
  return sign | bits;
}

/** float32 → IEEE half bits, round-to-nearest-even; overflow → ±inf; NaN → 0x7E00. */
export function f32ToF16Bits(x: number): number {
  return encodeMinifloat(x, 5, 10, 0x7e00, 'inf');
}

/** float32 → float8_e4m3fn bits (torch semantics: no inf, ≥ 480 → NaN 0x7F). */
export function f32ToF8E4M3Bits(x: number): number {
  return encodeMinifloat(x, 4, 3, 0x7f, 'nan');
}

/** float32 → float8_e5m2 bits (IEEE-like: overflow → ±inf, NaN → 0x7F). */
export function f32ToF8E5M2Bits(x: number): number {
  return encodeMinifloat(x, 5, 2, 0x7f, 'inf');
}

function decodeMinifloat(bits: number, ebits: number, mbits: number, fn: boolean): number {
  const sign = bits >>> (ebits + mbits) ? -1 : 1;
  const expMask = (1 << ebits) - 1;
  const e = (bits >>> mbits) & expMask;
  const m = bits & ((1 << mbits) - 1);
  const bias = (1 << (ebits - 1)) - 1;
  if (fn) {
    if (e === expMask && m === (1 << mbits) - 1) return Number.NaN;
  } else if (e === expMask) {
    return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  }
  if (e === 0) return sign * m * 2 ** (1 - bias - mbits);
  return sign * (1 + m / 2 ** mbits) * 2 ** (e - bias);
}

/** IEEE half bits → float32 value (exact, incl. subnormals, ±inf, NaN). */
export function f16BitsToF32(bits: number): number {
  return decodeMinifloat(bits & 0xffff, 5, 10, false);
}

let f16Table: Float32Array | null = null;
let e4m3Table: Float32Array | null = null;
let e5m2Table: Float32Array | null = null;

function getF16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = decodeMinifloat(i, 5, 10, false);
  }
  return f16Table;
}

function getE4M3Table(): Float32Array {
  if (!e4m3Table) {
    e4m3Table = new Float32Array(256);
    for (let i = 0; i < 256; i++) e4m3Table[i] = decodeMinifloat(i, 4, 3, true);
  }
  return e4m3Table;
}

function getE5M2Table(): Float32Array {
  if (!e5m2Table) {
    e5m2Table = new Float32Array(256);
    for (let i = 0; i < 256; i++) e5m2Table[i] = decodeMinifloat(i, 5, 2, false);
  }
  return e5m2Table;
}

// ---------------------------------------------------------------------------------------------
// array decoding

/** `bytes` as a view whose byteOffset is a multiple of `align` (copied if it is not). */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  if (align === 1 || bytes.byteOffset % align === 0) return bytes;
  return copyBytes(bytes);
}

/**
 * A fresh, aligned copy of `bytes` as a plain Uint8Array (never a view: `Buffer#slice`
 * would share memory).
 */
export function copyBytes(bytes: Uint8Array, start = 0, end = bytes.byteLength): Uint8Array {
  const out = new Uint8Array(Math.max(0, end - start));
  out.set(bytes.subarray(start, end));
  return out;
}

/**
 * Decode little-endian `bytes` of `dtype` to float32. Float dtypes are converted exactly
 * (F64 rounds to nearest float32); integer dtypes are converted as numbers (64-bit ones via
 * hi·2^32 + lo); BOOL gives 0/1. `out`, when given, must hold exactly the element count.
 */
export function decodeToFloat32(
  dtype: DType,
  bytes: Uint8Array,
  out?: Float32Array,
  context: EngineErrorContext = {},
): Float32Array {
  const size = DTYPE_SIZE[dtype];
  if (size === undefined) throw new EngineError('dtype', `unknown dtype ${String(dtype)}`, context);
  if (bytes.byteLength % size !== 0) {
    throw new EngineError(
      'shape',
      `${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`,
      context,
    );
  }
  const n = bytes.byteLength / size;
  const res = out ?? new Float32Array(n);
  if (res.length !== n) {
    throw new EngineError('shape', `output holds ${res.length} elements, data has ${n}`, context);
  }
  const b = aligned(bytes, size);
  const buf = b.buffer;
  const off = b.byteOffset;
  switch (dtype) {
    case 'F32':
      res.set(new Float32Array(buf, off, n));
      break;
    case 'F64':
      res.set(new Float64Array(buf, off, n));
      break;
    case 'BF16': {
      const src = new Uint16Array(buf, off, n);
      const dst = new Uint32Array(res.buffer, res.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
      break;
    }
    case 'F16': {
      const src = new Uint16Array(buf, off, n);
      const t = getF16Table();
      for (let i = 0; i < n; i++) res[i] = t[src[i]];
      break;
    }
    case 'F8_E4M3': {
      const t = getE4M3Table();
      for (let i = 0; i < n; i++) res[i] = t[b[i]];
      break;
    }
    case 'F8_E5M2': {
      const t = getE5M2Table();
      for (let i = 0; i < n; i++) res[i] = t[b[i]];
      break;
    }
    case 'BOOL':
      for (let i = 0; i < n; i++) res[i] = b[i] ? 1 : 0;
      break;
    case 'U8':
      res.set(b.subarray(0, n));
      break;
    case 'I8':
      res.set(new Int8Array(buf, off, n));
      break;
    case 'I16':
      res.set(new Int16Array(buf, off, n));
      break;
    case 'U16':
      res.set(new Uint16Array(buf, off, n));
      break;
    case 'I32':
      res.set(new Int32Array(buf, off, n));
      break;
    case 'U32':
      res.set(new Uint32Array(buf, off, n));
      break;
    case 'I64': {
      const w = new Uint32Array(buf, off, 2 * n);
      for (let i = 0; i < n; i++) res[i] = (w[2 * i + 1] | 0) * 4294967296 + w[2 * i];
      break;
    }
    case 'U64': {
      const w = new Uint32Array(buf, off, 2 * n);
      for (let i = 0; i < n; i++) res[i] = w[2 * i + 1] * 4294967296 + w[2 * i];
      break;
    }
    default:
      throw new EngineError('dtype', `unknown dtype ${String(dtype)}`, context);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// array encoding

/** float32 → bfloat16 bits, round-to-nearest-even (as torch `.to(torch.bfloat16)`). */
export function encodeBF16(values: Float32Array): Uint16Array {
  const n = values.length;
  const out = new Uint16Array(n);
  const u = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = ((x >>> 16) & 0x8000) | 0x7fc0;
    else out[i] = (x + (((x >>> 16) & 1) + 0x7fff)) >>> 16;
  }
  return out;
}

/** float32 → IEEE half bits, round-to-nearest-even (as torch `.to(torch.float16)`). */
export function encodeF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  return out;
}

function toBytes(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * Encode float32 values as little-endian bytes of `dtype`. Floats round to nearest even;
 * integer dtypes truncate toward zero (as torch `.to(int)`) and wrap like typed arrays;
 * BOOL is `x != 0`.
 */
export function encodeFromFloat32(
  dtype: DType,
  values: Float32Array,
  context: EngineErrorContext = {},
): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'F32':
      return toBytes(Float32Array.from(values));
    case 'F64':
      return toBytes(Float64Array.from(values));
    case 'BF16':
      return toBytes(encodeBF16(values));
    case 'F16':
      return toBytes(encodeF16(values));
    case 'F8_E4M3': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF8E4M3Bits(values[i]);
      return out;
    }
    case 'F8_E5M2': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF8E5M2Bits(values[i]);
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = values[i] !== 0 ? 1 : 0;
      return out;
    }
    case 'U8':
      return Uint8Array.from(values, truncInt);
    case 'I8':
      return toBytes(Int8Array.from(values, truncInt));
    case 'I16':
      return toBytes(Int16Array.from(values, truncInt));
    case 'U16':
      return toBytes(Uint16Array.from(values, truncInt));
    case 'I32':
      return toBytes(Int32Array.from(values, truncInt));
    case 'U32':
      return toBytes(Uint32Array.from(values, truncInt));
    case 'I64':
      return toBytes(BigInt64Array.from(values, (x) => BigInt(truncInt(x))));
    case 'U64':
      return toBytes(BigUint64Array.from(values, (x) => BigInt.asUintN(64, BigInt(truncInt(x)))));
    default:
      throw new EngineError('dtype', `unknown dtype ${String(dtype)}`, context);
  }
}

function truncInt(x: number): number {
  return Number.isFinite(x) ? Math.trunc(x) : 0;
}
