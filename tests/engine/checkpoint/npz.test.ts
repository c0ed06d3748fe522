import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fortranToRowMajor, parseNpyHeader } from '../../../electron/engine/checkpoint/npy.ts';
import { openNpy, openNpz } from '../../../electron/engine/checkpoint/npz.ts';
import { bytesOf, expectEngineError, makeTmpDir, npyBytes, removeDir, zipBytes } from './helpers.ts';

let dir: string;
beforeAll(() => {
  dir = makeTmpDir('cw-npz-');
});
afterAll(() => removeDir(dir));

function file(name: string, content: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

const range = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => i * scale);

/** A GemmaScope-like params.npz (d = 4, d_sae = 6). */
function gemmaScopeMembers(method: 0 | 8) {
  const d = 4;
  const dSae = 6;
  return [
    {
      name: 'W_enc.npy',
      method,
      data: npyBytes({ descr: '<f4', shape: [d, dSae], data: bytesOf(range(d * dSae)) }),
    },
    {
      name: 'W_dec.npy',
      method,
      data: npyBytes({ descr: '<f4', shape: [dSae, d], data: bytesOf(range(d * dSae, -1)) }),
    },
    {
      name: 'b_enc.npy',
      method,
      data: npyBytes({ descr: '<f4', shape: [dSae], data: bytesOf(range(dSae, 0.5)) }),
    },
    { name: 'b_dec.npy', method, data: npyBytes({ descr: '<f4', shape: [d], data: bytesOf(range(d, 2)) }) },
    {
      name: 'threshold.npy',
      method,
      data: npyBytes({ descr: '<f4', shape: [dSae], data: bytesOf(range(dSae, 0.1)) }),
    },
  ] as const;
}

describe('npz', () => {
  for (const [label, method, zip64] of [
    ['stored', 0, false],
    ['deflated', 8, false],
    ['stored zip64', 0, true],
    ['deflated zip64', 8, true],
  ] as const) {
    it(`reads ${label} members`, () => {
      const p = file(
        `gs-${label.replace(' ', '-')}.npz`,
        zipBytes([...gemmaScopeMembers(method)], { zip64 }),
      );
      const st = openNpz(p);
      expect(st.names().sort()).toEqual(['W_dec', 'W_enc', 'b_dec', 'b_enc', 'threshold']);
      const enc = st.info('W_enc');
      expect(enc.dtype).toBe('F32');
      expect(enc.shape).toEqual([4, 6]);
      expect(enc.byteLength).toBe(96);
      expect(enc.sourceFile).toBe(p);
      expect(enc.location.kind).toBe(method === 0 ? 'file' : 'memory');
      if (enc.location.kind === 'file') {
        // the location points straight at the array data inside the zip
        const raw = fs.readFileSync(p).subarray(enc.location.byteOffset, enc.location.byteOffset + 96);
        expect(Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 96)))).toEqual(
          Array.from(range(24)),
        );
      }
      const w = st.readFloat32('W_enc');
      expect(Array.from(w)).toEqual(Array.from(range(24)));
      w.fill(-1); // results are copies: the cached data must not change
      expect(Array.from(st.readFloat32('W_enc'))).toEqual(Array.from(range(24)));
      st.readRaw('W_enc').fill(0);
      expect(Array.from(st.readFloat32('W_enc'))).toEqual(Array.from(range(24)));
      expect({ ...enc }.location.kind).toBe(enc.location.kind);
      expect(Array.from(st.readFloat32('b_dec'))).toEqual(Array.from(range(4, 2)));
      expect(Array.from(st.readRowsFloat32('W_dec', [5, 0]))).toEqual([
        ...range(24, -1).slice(20),
        ...range(4, -1),
      ]);
      expect(st.readRaw('threshold').byteLength).toBe(24);
      expectEngineError(() => st.info('W_skip'), 'missing', p, 'W_skip');
      st.close();
    });
  }

  it('parses npy v2 / v3 headers, ints, bools and big-endian data', () => {
    const be = Buffer.alloc(12);
    for (const [i, x] of [1, -2, 300].entries()) be.writeInt32BE(x, i * 4);
    const beF = Buffer.alloc(8);
    beF.writeDoubleBE(0.25, 0);
    const members = [
      {
        name: 'v2.npy',
        method: 0 as const,
        data: npyBytes({ descr: '<i8', shape: [2], data: bytesOf(BigInt64Array.of(-3n, 5n)), version: 2 }),
      },
      {
        name: 'v3.npy',
        method: 8 as const,
        data: npyBytes({ descr: '<u2', shape: [1, 2], data: bytesOf(Uint16Array.of(7, 65535)), version: 3 }),
      },
      {
        name: 'b.npy',
        method: 0 as const,
        data: npyBytes({ descr: '|b1', shape: [3], data: Uint8Array.of(1, 0, 1) }),
      },
      {
        name: 'u.npy',
        method: 0 as const,
        data: npyBytes({ descr: '|u1', shape: [2], data: Uint8Array.of(200, 3) }),
      },
      {
        name: 'h.npy',
        method: 0 as const,
        data: npyBytes({ descr: '<f2', shape: [1], data: Uint8Array.of(0x00, 0x3c) }),
      },
      { name: 'be.npy', method: 0 as const, data: npyBytes({ descr: '>i4', shape: [3], data: be }) },
      { name: 'bed.npy', method: 8 as const, data: npyBytes({ descr: '>f8', shape: [1], data: beF }) },
      {
        name: 'i4.npy',
        method: 0 as const,
        data: npyBytes({ descr: '<i4', shape: [], data: bytesOf(Int32Array.of(9)) }),
      },
      { name: 'notes.txt', method: 0 as const, data: Buffer.from('ignored') },
    ];
    const p = file('types.npz', zipBytes(members));
    const st = openNpz(p);
    expect(st.names().sort()).toEqual(['b', 'be', 'bed', 'h', 'i4', 'u', 'v2', 'v3']);
    expect(Array.from(st.readFloat32('v2'))).toEqual([-3, 5]);
    expect(Array.from(st.readFloat32('v3'))).toEqual([7, 65535]);
    expect(st.info('v3').shape).toEqual([1, 2]);
    expect(st.info('b').dtype).toBe('BOOL');
    expect(Array.from(st.readFloat32('b'))).toEqual([1, 0, 1]);
    expect(Array.from(st.readFloat32('u'))).toEqual([200, 3]);
    expect(Array.from(st.readFloat32('h'))).toEqual([1]);
    expect(st.info('be').location.kind).toBe('memory');
    expect(Array.from(st.readFloat32('be'))).toEqual([1, -2, 300]);
    expect(Array.from(st.readRaw('be').subarray(0, 4))).toEqual([1, 0, 0, 0]); // little-endian now
    expect(Array.from(st.readFloat32('bed'))).toEqual([0.25]);
    expect(st.info('i4').shape).toEqual([]);
    expect(Array.from(st.readFloat32('i4'))).toEqual([9]);
    st.close();
  });

  it('transposes fortran_order arrays to row-major', () => {
    // row-major [[0,1,2],[3,4,5]] stored column-major: 0,3,1,4,2,5
    const colMajor = Float32Array.of(0, 3, 1, 4, 2, 5);
    const members = [
      {
        name: 'f.npy',
        method: 0 as const,
        data: npyBytes({ descr: '<f4', shape: [2, 3], data: bytesOf(colMajor), fortran: true }),
      },
      {
        name: 'g.npy',
        method: 8 as const,
        data: npyBytes({ descr: '<f4', shape: [2, 3], data: bytesOf(colMajor), fortran: true }),
      },
    ];
    const st = openNpz(file('fortran.npz', zipBytes(members)));
    expect(Array.from(st.readFloat32('f'))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(st.readFloat32('g'))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(st.readRowsFloat32('f', [1]))).toEqual([3, 4, 5]);
    st.close();
    // 3-d: element (i,j,k) of shape [2,3,4] at i + 2j + 6k in Fortran order
    const shape = [2, 3, 4];
    const f = new Uint8Array(24);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) f[i + 2 * j + 6 * k] = i * 12 + j * 4 + k;
    expect(Array.from(fortranToRowMajor(f, shape, 1))).toEqual(Array.from({ length: 24 }, (_, i) => i));
  });

  it('reads a single .npy file', () => {
    const p = file('W_enc.npy', npyBytes({ descr: '<f4', shape: [2, 2], data: bytesOf(range(4)) }));
    const st = openNpy(p);
    expect(st.names()).toEqual(['W_enc']);
    expect(Array.from(st.readFloat32('W_enc'))).toEqual([0, 1, 2, 3]);
    st.close();
  });

  describe('bad input', () => {
    const good = () => npyBytes({ descr: '<f4', shape: [2], data: bytesOf(range(2)) });

    it('not a zip', () => {
      const p = file('notzip.npz', Buffer.from('this is not a zip archive at all, really'));
      expectEngineError(() => openNpz(p), 'header', p);
      const q = file('short.npz', Buffer.from('PK'));
      expectEngineError(() => openNpz(q), 'truncated', q);
    });

    it('missing file', () => {
      const p = path.join(dir, 'nope.npz');
      expectEngineError(() => openNpz(p), 'missing', p);
    });

    it('bad local header signature', () => {
      const z = zipBytes([{ name: 'a.npy', method: 0, data: good() }]);
      z.writeUInt32LE(0x12345678, 0);
      const p = file('badlocal.npz', z);
      expectEngineError(() => openNpz(p), 'header', p, 'a.npy');
    });

    it('member data beyond the archive', () => {
      const z = zipBytes([{ name: 'a.npy', method: 0, data: good() }]);
      const cdOff = z.readUInt32LE(z.length - 6);
      // central directory: compressed + uncompressed sizes
      z.writeUInt32LE(100_000, cdOff + 20);
      z.writeUInt32LE(100_000, cdOff + 24);
      const p = file('bounds.npz', z);
      expectEngineError(() => openNpz(p), 'bounds', p, 'a.npy');
    });

    it('central directory outside the file', () => {
      const z = zipBytes([{ name: 'a.npy', method: 0, data: good() }]);
      z.writeUInt32LE(1_000_000, z.length - 6);
      const p = file('cd.npz', z);
      expectEngineError(() => openNpz(p), 'bounds', p);
    });

    it('npy data shorter than its header declares', () => {
      const short = npyBytes({ descr: '<f4', shape: [3], data: bytesOf(range(2)) });
      for (const method of [0, 8] as const) {
        const p = file(`shortnpy${method}.npz`, zipBytes([{ name: 'w.npy', method, data: short }]));
        expectEngineError(() => openNpz(p), 'truncated', p, 'tensor w');
      }
    });

    it('unsupported descr and bad npy headers', () => {
      const cases: [string, Uint8Array, string][] = [
        ['complex', npyBytes({ descr: '<c8', shape: [1], data: new Uint8Array(8) }), 'dtype'],
        ['object', npyBytes({ descr: '|O', shape: [1], data: new Uint8Array(8) }), 'dtype'],
        ['magic', Buffer.concat([Buffer.from('NOTNPY'), Buffer.from(good()).subarray(6)]), 'header'],
        [
          'version',
          Buffer.concat([
            Buffer.from(good()).subarray(0, 6),
            Buffer.from([9, 0]),
            Buffer.from(good()).subarray(8),
          ]),
          'header',
        ],
      ];
      for (const [name, data, code] of cases) {
        const p = file(`bad-${name}.npz`, zipBytes([{ name: `${name}.npy`, method: 0, data }]));
        expectEngineError(() => openNpz(p), code as 'dtype' | 'header', p, `tensor ${name}`);
      }
      const dict = (s: string) => {
        const b = Buffer.alloc(10 + s.length);
        Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(b);
        b.writeUInt16LE(s.length, 8);
        b.write(s, 10, 'latin1');
        return b;
      };
      expect(
        parseNpyHeader(dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2), }\n")).shape,
      ).toEqual([3, 2]);
      for (const bad of [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)",
        "{'descr': '<f4', 'fortran_order': 'no', 'shape': (3,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } trailing",
        '[1, 2]',
      ]) {
        expectEngineError(
          () => parseNpyHeader(dict(bad), { file: 'f.npz', tensor: 't' }),
          bad.includes("[('a'") ? 'dtype' : 'header',
          'f.npz',
          'tensor t',
        );
      }
    });

    it('corrupt deflate stream and CRC mismatch', () => {
      const z = zipBytes([{ name: 'w.npy', method: 8, data: good() }]);
      const corrupt = Buffer.from(z);
      corrupt.fill(0xff, 30 + 5, 30 + 5 + 6);
      const p = file('corrupt.npz', corrupt);
      expectEngineError(() => openNpz(p).readFloat32('w'), 'header', p, 'tensor w');
      const badCrc = Buffer.from(z);
      const cdOff = badCrc.readUInt32LE(badCrc.length - 6);
      badCrc.writeUInt32LE((badCrc.readUInt32LE(cdOff + 16) ^ 1) >>> 0, cdOff + 16);
      const q = file('crc.npz', badCrc);
      const st = openNpz(q);
      expectEngineError(() => st.readFloat32('w'), 'header', q, 'tensor w', 'CRC');
    });

    it('unsupported compression method and duplicate members', () => {
      const z = zipBytes([{ name: 'w.npy', method: 0, data: good() }]);
      const cdOff = z.readUInt32LE(z.length - 6);
      z.writeUInt16LE(14, cdOff + 10);
      const p = file('lzma.npz', z);
      expectEngineError(() => openNpz(p), 'unsupported', p, 'tensor w');
      const dup = zipBytes([
        { name: 'w.npy', method: 0, data: good() },
        { name: 'w.npy', method: 8, data: good() },
      ]);
      const q = file('dup.npz', dup);
      expectEngineError(() => openNpz(q), 'header', q, 'tensor w');
    });
  });
});
