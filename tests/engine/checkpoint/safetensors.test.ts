import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ALL_DTYPES,
  DTYPE_SIZE,
  decodeToFloat32,
  encodeFromFloat32,
} from '../../../electron/engine/checkpoint/dtype.ts';
import { MAX_HEADER_BYTES, openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import {
  encodeSafetensors,
  type TensorToWrite,
  writeSafetensors,
} from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { DECODE_PIECE } from '../../../electron/engine/checkpoint/store-base.ts';
import { expectEngineError, makeTmpDir, rawSafetensors, removeDir } from './helpers.ts';

let dir: string;
beforeAll(() => {
  dir = makeTmpDir();
});
afterAll(() => removeDir(dir));

function file(name: string, content?: Uint8Array): string {
  const p = path.join(dir, name);
  if (content) fs.writeFileSync(p, content);
  return p;
}

describe('writer → reader round trip', () => {
  it('round-trips every dtype from float32 and raw bytes', () => {
    const values = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2 + (i === 7 ? 0.5 : 0));
    const tensors: TensorToWrite[] = ALL_DTYPES.map((dt) => ({
      name: `t.${dt}`,
      dtype: dt,
      shape: [3, 4],
      data: values,
    }));
    tensors.push({ name: 'raw', dtype: 'U16', shape: [2], data: Uint8Array.of(1, 0, 0, 1) });
    tensors.push({ name: 'scalar', dtype: 'F32', shape: [], data: Float32Array.of(42) });
    tensors.push({ name: 'empty', dtype: 'BF16', shape: [0, 5], data: new Float32Array(0) });
    tensors.push({ name: '__proto__', dtype: 'I8', shape: [1], data: Float32Array.of(-4) });
    const p = file('all.safetensors');
    writeSafetensors(p, tensors, { format: 'pt', note: 'ünïcode' });
    const st = openSafetensors(p);
    try {
      expect(st.names()).toEqual(tensors.map((t) => t.name));
      expect(st.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
      for (const dt of ALL_DTYPES) {
        const name = `t.${dt}`;
        const info = st.info(name);
        expect(info.dtype).toBe(dt);
        expect(info.shape).toEqual([3, 4]);
        expect(info.byteLength).toBe(12 * DTYPE_SIZE[dt]);
        expect(info.location.kind).toBe('file');
        expect(info.sourceFile).toBe(p);
        const want = decodeToFloat32(dt, encodeFromFloat32(dt, values));
        expect(Array.from(st.readFloat32(name)), dt).toEqual(Array.from(want));
        expect(Array.from(st.readRaw(name))).toEqual(Array.from(encodeFromFloat32(dt, values)));
      }
      expect(Array.from(st.readFloat32('raw'))).toEqual([1, 256]);
      expect(Array.from(st.readFloat32('scalar'))).toEqual([42]);
      expect(st.readFloat32('empty').length).toBe(0);
      expect(Array.from(st.readFloat32('__proto__'))).toEqual([-4]);
      expect(st.has('nope')).toBe(false);
      expectEngineError(() => st.info('nope'), 'missing', p, 'nope');
      expectEngineError(() => st.readFloat32('nope'), 'missing', p, 'nope');
    } finally {
      st.close();
    }
  });

  it('writes the reference layout: space-padded header, data in given order, location offsets', () => {
    const buf = encodeSafetensors(
      [
        { name: 'b', dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
        { name: 'a', dtype: 'F32', shape: [2], data: Float32Array.of(1.5, -2) },
      ],
      undefined,
    );
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = buf.subarray(8, 8 + n).toString('utf8');
    expect(header.trimEnd()).toBe(
      '{"b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"a":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}}',
    );
    expect(header.slice(header.trimEnd().length)).toMatch(/^ *$/);
    expect(buf.length).toBe(8 + n + 11);
    // 'a' is unaligned (offset 3) on disk: reading must still work
    const p = file('unaligned.safetensors', buf);
    const st = openSafetensors(p);
    expect(st.info('a').location).toEqual({ kind: 'file', file: p, byteOffset: 8 + n + 3 });
    expect(st.dataOffset).toBe(8 + n);
    expect(Array.from(st.readFloat32('a'))).toEqual([1.5, -2]);
    expect(Array.from(st.readRaw('b'))).toEqual([1, 2, 3]);
    st.close();
  });

  it('rejects bad writer input', () => {
    expectEngineError(
      () => encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      'shape',
      'x',
    );
    expectEngineError(
      () => encodeSafetensors([{ name: 'x', dtype: 'F16', shape: [3], data: new Uint8Array(5) }]),
      'shape',
      'x',
    );
    expectEngineError(
      () =>
        encodeSafetensors([
          { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
          { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        ]),
      'argument',
      'x',
    );
    expectEngineError(
      () => encodeSafetensors([{ name: 'x', dtype: 'F7' as never, shape: [1], data: new Float32Array(1) }]),
      'dtype',
      'x',
    );
  });
});

describe('readRowsFloat32', () => {
  it('reads only the requested rows, coalescing adjacent ones, in request order', () => {
    const rows = 50;
    const cols = 6;
    const data = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const p = file('rows.safetensors');
    writeSafetensors(p, [
      { name: 'pad', dtype: 'U8', shape: [1], data: Uint8Array.of(9) },
      { name: 'w', dtype: 'F16', shape: [rows, cols], data },
      { name: 'w3', dtype: 'F32', shape: [rows, 2, 3], data },
    ]);
    const st = openSafetensors(p);
    const spy = vi.spyOn(fs, 'readSync');
    const want = [7, 8, 9, 2, 8, 49, 0];
    const got = st.readRowsFloat32('w', want);
    // runs: {0}, {2}, {7,8,9}, {49} → 4 reads
    expect(spy).toHaveBeenCalledTimes(4);
    const totalBytes = spy.mock.calls.reduce((s, c) => s + ((c as unknown[])[3] as number), 0);
    expect(totalBytes).toBe(6 * cols * 2);
    spy.mockRestore();
    expect(got.length).toBe(want.length * cols);
    for (let k = 0; k < want.length; k++) {
      for (let c = 0; c < cols; c++) expect(got[k * cols + c]).toBe(want[k] * cols + c);
    }
    const g3 = st.readRowsFloat32('w3', [3, 1]);
    expect(Array.from(g3)).toEqual([...data.slice(18, 24), ...data.slice(6, 12)]);
    expect(st.readRowsFloat32('w', []).length).toBe(0);
    expectEngineError(() => st.readRowsFloat32('w', [50]), 'argument', p, 'w');
    expectEngineError(() => st.readRowsFloat32('w', [-1]), 'argument', p, 'w');
    expectEngineError(() => st.readRowsFloat32('w', [1.5]), 'argument', p, 'w');
    expect(Array.from(st.readRowsFloat32('pad', [0, 0]))).toEqual([9, 9]);
    st.close();
  });
});

describe('decoding into a given array (streamed weights)', () => {
  it('readFloat32(name, out) and readFloat32Range fill in place through a small piece buffer', () => {
    const rows = 37;
    const cols = 11;
    const data = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 8);
    const p = file('into.safetensors');
    writeSafetensors(p, [
      { name: 'pad', dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
      { name: 'bf', dtype: 'BF16', shape: [rows, cols], data },
      { name: 'f32', dtype: 'F32', shape: [rows, cols], data },
    ]);
    const st = openSafetensors(p);
    const saved = DECODE_PIECE.bytes;
    DECODE_PIECE.bytes = 10; // 5 bf16 values per piece: many pieces, a short last one
    try {
      for (const name of ['bf', 'f32']) {
        const want = st.readFloat32(name);
        const out = new Float32Array(rows * cols).fill(Number.NaN);
        expect(st.readFloat32(name, out)).toBe(out);
        expect(Array.from(out), name).toEqual(Array.from(want));
        // rows 5..9 of the flat tensor, into the front of a larger reused array
        const chunk = new Float32Array(100).fill(-1);
        const view = chunk.subarray(0, 5 * cols);
        st.readFloat32Range(name, 5 * cols, view);
        expect(Array.from(view)).toEqual(Array.from(want.subarray(5 * cols, 10 * cols)));
        expect(chunk[5 * cols]).toBe(-1);
      }
      expectEngineError(() => st.readFloat32('bf', new Float32Array(3)), 'argument', p, 'bf');
      expectEngineError(
        () => st.readFloat32Range('bf', rows * cols - 2, new Float32Array(3)),
        'argument',
        p,
        'bf',
      );
    } finally {
      DECODE_PIECE.bytes = saved;
      st.close();
    }
  });
});

describe('bad input', () => {
  const okHeader = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F16', shape: [2, 2], data_offsets: [8, 16] },
  };

  it('file shorter than 8 bytes', () => {
    const p = file('tiny.safetensors', Uint8Array.of(1, 2, 3));
    expectEngineError(() => openSafetensors(p), 'truncated', p);
  });

  it('missing file', () => {
    const p = path.join(dir, 'does-not-exist.safetensors');
    expectEngineError(() => openSafetensors(p), 'missing', p);
  });

  it('truncated data', () => {
    const good = rawSafetensors(okHeader, 16);
    const p = file('trunc.safetensors', good.subarray(0, good.length - 3));
    expectEngineError(() => openSafetensors(p), 'truncated', p, 'tensor b');
  });

  it('header length beyond the file', () => {
    const p = file('hlen.safetensors', rawSafetensors(okHeader, 16, 100_000n));
    expectEngineError(() => openSafetensors(p), 'truncated', p, 'header length');
  });

  it('header length over the 100 MB limit', () => {
    const p = file('hhuge.safetensors', rawSafetensors(okHeader, 16, BigInt(MAX_HEADER_BYTES) + 1n));
    expectEngineError(() => openSafetensors(p), 'header', p);
    const q = file('hhuge2.safetensors', rawSafetensors(okHeader, 16, 2n ** 64n - 1n));
    expectEngineError(() => openSafetensors(q), 'header', q);
  });

  it('malformed header JSON and non-object headers', () => {
    const p = file('json.safetensors', rawSafetensors('{"a": {"dtype": "F32",', 0));
    expectEngineError(() => openSafetensors(p), 'header', p, 'JSON');
    for (const [i, text] of ['[1,2]', 'null', '"x"', '3'].entries()) {
      const q = file(`nonobj${i}.safetensors`, rawSafetensors(text, 0));
      expectEngineError(() => openSafetensors(q), 'header', q);
    }
    const bad = Buffer.concat([Buffer.alloc(8), Buffer.from([0x7b, 0xff, 0x7d])]);
    bad.writeBigUInt64LE(3n, 0);
    const r = file('utf8.safetensors', bad);
    expectEngineError(() => openSafetensors(r), 'header', r, 'UTF-8');
    const m = file('meta.safetensors', rawSafetensors({ __metadata__: { k: 3 } }, 0));
    expectEngineError(() => openSafetensors(m), 'header', m, '__metadata__.k');
  });

  it('empty header is a valid, empty file', () => {
    const p = file('empty.safetensors', rawSafetensors({}, 0));
    const st = openSafetensors(p);
    expect(st.names()).toEqual([]);
    expect(st.metadata).toBeUndefined();
  });

  it('overlapping offsets', () => {
    const h = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    const p = file('overlap.safetensors', rawSafetensors(h, 12));
    expectEngineError(() => openSafetensors(p), 'bounds', p, 'tensor b', 'overlap');
  });

  it('holes between tensors', () => {
    const h = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] },
    };
    const p = file('hole.safetensors', rawSafetensors(h, 20));
    expectEngineError(() => openSafetensors(p), 'bounds', p, 'tensor b', 'hole');
    const first = { a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    const q = file('hole0.safetensors', rawSafetensors(first, 12));
    expectEngineError(() => openSafetensors(q), 'bounds', q, 'tensor a');
  });

  it('trailing bytes after the last tensor', () => {
    const p = file('trailing.safetensors', rawSafetensors(okHeader, 20));
    expectEngineError(() => openSafetensors(p), 'bounds', p, 'tensor b');
  });

  it('out-of-range offsets', () => {
    const h = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [1000, 1008] },
    };
    const p = file('range.safetensors', rawSafetensors(h, 16));
    expectEngineError(() => openSafetensors(p), 'bounds', p, 'tensor b', 'outside');
    const big = { a: { dtype: 'U8', shape: [0], data_offsets: [1e300, 1e300] } };
    const q = file('range2.safetensors', rawSafetensors(big, 0));
    expectEngineError(() => openSafetensors(q), 'bounds', q, 'tensor a');
    const rev = { a: { dtype: 'U8', shape: [0], data_offsets: [8, 4] } };
    const r = file('range3.safetensors', rawSafetensors(rev, 8));
    expectEngineError(() => openSafetensors(r), 'bounds', r, 'tensor a');
  });

  it('unknown dtype', () => {
    const h = { ...okHeader, b: { dtype: 'F4', shape: [2, 2], data_offsets: [8, 16] } };
    const p = file('dtype.safetensors', rawSafetensors(h, 16));
    expectEngineError(() => openSafetensors(p), 'dtype', p, 'tensor b', 'F4');
  });

  it('shape / size disagreement', () => {
    const h = { ...okHeader, b: { dtype: 'F16', shape: [2, 3], data_offsets: [8, 16] } };
    const p = file('shape.safetensors', rawSafetensors(h, 16));
    expectEngineError(() => openSafetensors(p), 'shape', p, 'tensor b');
  });

  it('malformed entries', () => {
    const cases: [string, unknown][] = [
      ['notobj', 5],
      ['negshape', { dtype: 'F32', shape: [-2], data_offsets: [0, 8] }],
      ['floatshape', { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] }],
      ['strshape', { dtype: 'F32', shape: '2', data_offsets: [0, 8] }],
      ['nooffsets', { dtype: 'F32', shape: [2] }],
      ['threeoffsets', { dtype: 'F32', shape: [2], data_offsets: [0, 4, 8] }],
      ['stroffsets', { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] }],
    ];
    for (const [name, entry] of cases) {
      const p = file(`entry-${name}.safetensors`, rawSafetensors({ [name]: entry }, 8));
      expectEngineError(() => openSafetensors(p), 'header', p, `tensor ${name}`);
    }
  });

  it('a file that shrinks after open reports truncation on read', () => {
    const p = file('shrink.safetensors');
    writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [64], data: new Float32Array(64) }]);
    const st = openSafetensors(p);
    fs.truncateSync(p, fs.statSync(p).size - 10);
    expectEngineError(() => st.readFloat32('w'), 'truncated', p, 'tensor w');
    st.close();
  });
});
