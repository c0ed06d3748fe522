import { describe, expect, it } from 'vitest';
import {
  ALL_DTYPES,
  bf16BitsToF32,
  DTYPE_SIZE,
  decodeToFloat32,
  dtypeSize,
  encodeBF16,
  encodeF16,
  encodeFromFloat32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF8E4M3Bits,
  f32ToF8E5M2Bits,
  f32ToF16Bits,
  isDType,
  numElements,
} from '../../../electron/engine/checkpoint/dtype.ts';
import { bytesOf, expectEngineError } from './helpers.ts';

/** float32 with the given bit pattern */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

describe('dtype sizes', () => {
  it('knows every dtype', () => {
    expect(ALL_DTYPES).toHaveLength(15);
    expect(dtypeSize('BF16')).toBe(2);
    expect(DTYPE_SIZE.F8_E4M3).toBe(1);
    expect(DTYPE_SIZE.I64).toBe(8);
    expect(isDType('F32')).toBe(true);
    expect(isDType('F4')).toBe(false);
    expect(isDType('toString')).toBe(false);
    expect(numElements([])).toBe(1);
    expect(numElements([2, 0, 3])).toBe(0);
    expectEngineError(() => numElements([2 ** 30, 2 ** 30, 2 ** 30]), 'shape');
  });
});

describe('bf16', () => {
  it('rounds to nearest even like torch', () => {
    const cases: [number, number][] = [
      [0x3f800000, 0x3f80], // 1.0
      [0x3f808000, 0x3f80], // tie, even stays
      [0x3f818000, 0x3f82], // tie, odd rounds up
      [0x3f808001, 0x3f81], // above tie
      [0x3f807fff, 0x3f80], // below tie
      [0x7f7fffff, 0x7f80], // max float rounds to inf
      [0x7f800000, 0x7f80], // inf
      [0xff800000, 0xff80], // -inf
      [0x80000000, 0x8000], // -0
      [0x00000001, 0x0000], // smallest subnormal
      [0x7fc00000, 0x7fc0], // NaN
      [0x7f800001, 0x7fc0], // signalling NaN → canonical quiet NaN
      [0xffc00001, 0xffc0], // negative NaN keeps its sign
      [0x40490fdb, 0x4049], // pi
    ];
    for (const [input, want] of cases) expect(f32ToBf16Bits(f32(input))).toBe(want);
    const arr = new Float32Array(cases.map(([b]) => f32(b)));
    expect(Array.from(encodeBF16(arr))).toEqual(cases.map(([, w]) => w));
  });

  it('decodes as u32 = u16 << 16', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc000)).toBe(-2);
    const raw = new Uint16Array([0x3f80, 0x4049, 0xff80, 0x7fc0, 0x0001]);
    const out = decodeToFloat32('BF16', bytesOf(raw));
    expect(out[0]).toBe(1);
    expect(out[1]).toBe(f32(0x40490000));
    expect(out[2]).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(out[3])).toBe(true);
    expect(out[4]).toBe(f32(0x00010000));
  });
});

describe('f16', () => {
  it('rounds to nearest even with subnormals, inf and NaN', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65519, 0x7bff],
      [65520, 0x7c00], // tie to even → overflow to inf
      [1e6, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie → even (0)
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 → even (2)
      [1 + 2 ** -11, 0x3c00], // tie → even
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [0.1, 0x2e66],
      [-0, 0x8000],
      [Number.NaN, 0x7e00],
      [2 ** -14 - 2 ** -25, 0x0400], // subnormal rounding up into the smallest normal
    ];
    for (const [x, want] of cases) expect(f32ToF16Bits(x), String(x)).toBe(want);
    expect(Array.from(encodeF16(new Float32Array(cases.map(([x]) => x))))).toEqual(cases.map(([, w]) => w));
  });

  it('decodes every bit pattern exactly and round-trips', () => {
    const all = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i;
    const dec = decodeToFloat32('F16', bytesOf(all));
    expect(dec[0x3c00]).toBe(1);
    expect(dec[0x0001]).toBe(2 ** -24);
    expect(dec[0x03ff]).toBe(1023 * 2 ** -24);
    expect(dec[0x7bff]).toBe(65504);
    expect(dec[0x7c00]).toBe(Number.POSITIVE_INFINITY);
    expect(dec[0xfc00]).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(dec[0x8000], -0)).toBe(true);
    expect(Number.isNaN(dec[0x7c01])).toBe(true);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    const re = encodeF16(dec);
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (!nan && re[i] !== i) throw new Error(`f16 ${i.toString(16)} re-encodes to ${re[i].toString(16)}`);
    }
  });
});

describe('f8', () => {
  it('decodes and encodes e4m3fn (torch float8_e4m3fn)', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const dec = decodeToFloat32('F8_E4M3', all);
    expect(dec[0x38]).toBe(1);
    expect(dec[0x30]).toBe(0.5);
    expect(dec[0x7e]).toBe(448);
    expect(dec[0xfe]).toBe(-448);
    expect(dec[0x01]).toBe(2 ** -9);
    expect(dec[0x08]).toBe(2 ** -6);
    expect(dec[0x78]).toBe(256); // exponent 1111 is finite in the fn variant
    expect(Number.isNaN(dec[0x7f])).toBe(true);
    expect(Number.isNaN(dec[0xff])).toBe(true);
    for (let i = 0; i < 256; i++) {
      if ((i & 0x7f) !== 0x7f) expect(f32ToF8E4M3Bits(dec[i])).toBe(i);
    }
    expect(f32ToF8E4M3Bits(464)).toBe(0x7e); // tie → even
    expect(f32ToF8E4M3Bits(470)).toBe(0x7f); // rounds past 448 → NaN
    expect(f32ToF8E4M3Bits(480)).toBe(0x7f);
    expect(f32ToF8E4M3Bits(Number.POSITIVE_INFINITY)).toBe(0x7f);
    expect(f32ToF8E4M3Bits(-1e9)).toBe(0xff);
    expect(f32ToF8E4M3Bits(1.0625)).toBe(0x38);
    expect(f32ToF8E4M3Bits(1.1875)).toBe(0x3a);
    expect(f32ToF8E4M3Bits(2 ** -10)).toBe(0x00); // tie → even (0)
  });

  it('decodes and encodes e5m2', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const dec = decodeToFloat32('F8_E5M2', all);
    expect(dec[0x3c]).toBe(1);
    expect(dec[0x7b]).toBe(57344);
    expect(dec[0x01]).toBe(2 ** -16);
    expect(dec[0x7c]).toBe(Number.POSITIVE_INFINITY);
    expect(dec[0xfc]).toBe(Number.NEGATIVE_INFINITY);
    expect(Number.isNaN(dec[0x7d])).toBe(true);
    for (let i = 0; i < 256; i++) {
      if ((i & 0x7c) !== 0x7c || (i & 3) === 0) expect(f32ToF8E5M2Bits(dec[i])).toBe(i);
    }
    expect(f32ToF8E5M2Bits(61440)).toBe(0x7c); // tie → even → inf
    expect(f32ToF8E5M2Bits(60000)).toBe(0x7b);
    expect(f32ToF8E5M2Bits(Number.NaN)).toBe(0x7f);
  });
});

describe('decodeToFloat32', () => {
  it('decodes integers, bools and f64', () => {
    expect(Array.from(decodeToFloat32('I8', Uint8Array.from([0xff, 0x7f, 0x80])))).toEqual([-1, 127, -128]);
    expect(Array.from(decodeToFloat32('U8', Uint8Array.from([0xff, 3])))).toEqual([255, 3]);
    expect(Array.from(decodeToFloat32('BOOL', Uint8Array.from([0, 1, 2])))).toEqual([0, 1, 1]);
    expect(Array.from(decodeToFloat32('I16', bytesOf(Int16Array.from([-300, 300]))))).toEqual([-300, 300]);
    expect(Array.from(decodeToFloat32('U16', bytesOf(Uint16Array.from([65535]))))).toEqual([65535]);
    expect(Array.from(decodeToFloat32('I32', bytesOf(Int32Array.from([-7, 1 << 20]))))).toEqual([
      -7,
      1 << 20,
    ]);
    expect(Array.from(decodeToFloat32('U32', bytesOf(Uint32Array.from([4e9]))))).toEqual([4e9]);
    expect(
      Array.from(decodeToFloat32('I64', bytesOf(BigInt64Array.from([-5n, 2n ** 40n, -(2n ** 40n)])))),
    ).toEqual([-5, 2 ** 40, -(2 ** 40)]);
    expect(Array.from(decodeToFloat32('U64', bytesOf(BigUint64Array.from([2n ** 63n, 9n]))))).toEqual([
      2 ** 63,
      9,
    ]);
    expect(Array.from(decodeToFloat32('F64', bytesOf(Float64Array.from([0.1, -3]))))).toEqual([
      Math.fround(0.1),
      -3,
    ]);
  });

  it('copies unaligned data before making typed views', () => {
    const src = Float32Array.from([1.5, -2.25, 3]);
    const buf = new Uint8Array(13);
    buf.set(bytesOf(src), 1);
    expect(Array.from(decodeToFloat32('F32', buf.subarray(1)))).toEqual([1.5, -2.25, 3]);
    const i64 = new Uint8Array(17);
    i64.set(bytesOf(BigInt64Array.from([-9n, 11n])), 1);
    expect(Array.from(decodeToFloat32('I64', i64.subarray(1)))).toEqual([-9, 11]);
  });

  it('rejects a byte count that is not a whole number of elements', () => {
    expectEngineError(
      () => decodeToFloat32('F32', new Uint8Array(6), undefined, { file: 'x', tensor: 't' }),
      'shape',
      'x',
      't',
    );
  });
});

describe('encodeFromFloat32', () => {
  it('round-trips through every dtype', () => {
    const values = Float32Array.from([0, 1, -2, 3, 100, -100, 7]);
    for (const dt of ALL_DTYPES) {
      const enc = encodeFromFloat32(dt, values);
      expect(enc.byteLength, dt).toBe(values.length * DTYPE_SIZE[dt]);
      const dec = decodeToFloat32(dt, enc);
      const want = Array.from(values, (v) => {
        if (dt === 'BOOL') return v !== 0 ? 1 : 0;
        if (dt === 'U64') return v < 0 ? Math.fround(2 ** 64 + v) : v;
        if (dt.startsWith('U'))
          return Math.fround(dt === 'U8' ? v & 0xff : dt === 'U16' ? v & 0xffff : v >>> 0);
        if (dt === 'F8_E4M3') return decodeToFloat32(dt, Uint8Array.of(f32ToF8E4M3Bits(v)))[0];
        if (dt === 'F8_E5M2') return decodeToFloat32(dt, Uint8Array.of(f32ToF8E5M2Bits(v)))[0];
        return v;
      });
      expect(Array.from(dec), dt).toEqual(want);
    }
    expect(
      Array.from(decodeToFloat32('I32', encodeFromFloat32('I32', Float32Array.from([2.7, -2.7])))),
    ).toEqual([2, -2]);
  });
});
