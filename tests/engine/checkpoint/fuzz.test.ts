/**
 * Fuzz: mutate valid files deterministically and check that every failure is an
 * EngineError (never a TypeError, RangeError, JSON SyntaxError…) and that nothing hangs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNpz } from '../../../electron/engine/checkpoint/npz.ts';
import { openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { encodeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import type { TensorStore } from '../../../electron/engine/checkpoint/tensor.ts';
import { EngineError } from '../../../electron/engine/errors.ts';
import { bytesOf, makeTmpDir, npyBytes, prng, removeDir, zipBytes } from './helpers.ts';

let dir: string;
beforeAll(() => {
  dir = makeTmpDir('cw-fuzz-', true);
});
afterAll(() => removeDir(dir));

const INTERESTING = Buffer.from('{}[]",:-0123456789e.E+ \\"nulltruefalse\x00\xff');

/** Open with `open`, read every tensor every way; returns 'ok' or the EngineError code. */
function exercise(p: string, open: (p: string) => TensorStore): string {
  let st: TensorStore | undefined;
  try {
    st = open(p);
    for (const name of st.names()) {
      const info = st.info(name);
      st.readRaw(name);
      st.readFloat32(name);
      if (info.shape.length > 0 && info.shape[0] > 0) st.readRowsFloat32(name, [info.shape[0] - 1, 0]);
    }
    return 'ok';
  } catch (e) {
    if (!(e instanceof EngineError)) {
      throw new Error(`non-EngineError thrown for ${p}: ${(e as Error)?.stack ?? String(e)}`);
    }
    expect(e.message).toContain(p);
    return e.code;
  } finally {
    st?.close();
  }
}

function mutateSafetensors(src: Buffer, rand: () => number): Buffer {
  let buf = Buffer.from(src);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const pick = (n: number) => Math.floor(rand() * n);
  const steps = 1 + pick(3);
  for (let s = 0; s < steps; s++) {
    const hEnd = Math.min(8 + headerLen, buf.length);
    switch (pick(8)) {
      case 0: {
        // flip a bit in the header
        if (hEnd > 8) buf[8 + pick(hEnd - 8)] ^= 1 << pick(8);
        break;
      }
      case 1: {
        // replace a header byte with a JSON-significant or random byte
        if (hEnd > 8)
          buf[8 + pick(hEnd - 8)] = rand() < 0.8 ? INTERESTING[pick(INTERESTING.length)] : pick(256);
        break;
      }
      case 2: {
        // truncate anywhere
        buf = buf.subarray(0, pick(buf.length + 1));
        break;
      }
      case 3: {
        // change the length prefix
        if (buf.length >= 8) {
          const choices = [
            BigInt(headerLen + pick(17) - 8),
            BigInt(pick(buf.length + 16)),
            2n ** 64n - 1n - BigInt(pick(10)),
            BigInt(pick(2 ** 31)),
            100_000_001n,
          ];
          const v = choices[pick(choices.length)];
          buf.writeBigUInt64LE(v < 0n ? 0n : v, 0);
        }
        break;
      }
      case 4: {
        // splice digits: replace a run of digits with another number
        const text = buf.subarray(8, hEnd).toString('latin1');
        const runs = [...text.matchAll(/\d+/g)];
        if (runs.length) {
          const r = runs[pick(runs.length)];
          const repl = [
            '0',
            '1',
            String(pick(100)),
            '-1',
            '1e3',
            '2.5',
            '99999999999999999999',
            String(pick(1e6)),
          ][pick(8)];
          const start = 8 + (r.index ?? 0);
          buf = Buffer.concat([
            buf.subarray(0, start),
            Buffer.from(repl, 'latin1'),
            buf.subarray(start + r[0].length),
          ]);
          if (rand() < 0.7) buf.writeBigUInt64LE(BigInt(headerLen + repl.length - r[0].length), 0);
        }
        break;
      }
      case 5: {
        // insert or delete a header byte, keeping (or not) the length prefix in sync
        if (hEnd > 8) {
          const at = 8 + pick(hEnd - 8);
          const del = rand() < 0.5;
          buf = del
            ? Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)])
            : Buffer.concat([
                buf.subarray(0, at),
                Buffer.of(INTERESTING[pick(INTERESTING.length)]),
                buf.subarray(at),
              ]);
          if (rand() < 0.5) buf.writeBigUInt64LE(BigInt(headerLen + (del ? -1 : 1)), 0);
        }
        break;
      }
      case 6: {
        // append or drop data bytes
        buf =
          rand() < 0.5
            ? Buffer.concat([buf, Buffer.alloc(1 + pick(16))])
            : buf.subarray(0, buf.length - 1 - pick(8));
        break;
      }
      default: {
        // swap two header bytes
        if (hEnd > 9) {
          const a = 8 + pick(hEnd - 8);
          const b = 8 + pick(hEnd - 8);
          const t = buf[a];
          buf[a] = buf[b];
          buf[b] = t;
        }
      }
    }
  }
  return buf;
}

describe('fuzz', () => {
  it('safetensors: 1500 mutated headers fail only with EngineError', () => {
    const valid = encodeSafetensors(
      [
        {
          name: 'model.embed_tokens.weight',
          dtype: 'BF16',
          shape: [4, 3],
          data: Float32Array.from({ length: 12 }, (_, i) => i),
        },
        { name: 'a', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
        { name: 'i', dtype: 'I64', shape: [1, 1], data: Float32Array.of(-3) },
        { name: 'h', dtype: 'F16', shape: [3], data: Float32Array.of(1, 2, 3) },
        { name: 'e', dtype: 'F8_E4M3', shape: [0, 2], data: new Float32Array(0) },
        { name: 'b', dtype: 'BOOL', shape: [5], data: Float32Array.of(1, 0, 1, 0, 1) },
      ],
      { format: 'pt' },
    );
    const p = path.join(dir, 'fuzz.safetensors');
    fs.writeFileSync(p, valid);
    expect(exercise(p, openSafetensors)).toBe('ok');
    const rand = prng(0xc0ffee);
    const codes = new Map<string, number>();
    const t0 = performance.now();
    for (let i = 0; i < 1500; i++) {
      fs.writeFileSync(p, mutateSafetensors(valid, rand));
      const code = exercise(p, openSafetensors);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(5000);
    // the mutations reach many different checks
    for (const c of ['header', 'truncated', 'bounds', 'shape'])
      expect(codes.get(c) ?? 0, c).toBeGreaterThan(0);
  });

  it('npz: 600 mutated archives fail only with EngineError', () => {
    const members = [
      {
        name: 'W_enc.npy',
        method: 0 as const,
        data: npyBytes({
          descr: '<f4',
          shape: [3, 4],
          data: bytesOf(Float32Array.from({ length: 12 }, (_, i) => i)),
        }),
      },
      {
        name: 'b_enc.npy',
        method: 8 as const,
        data: npyBytes({ descr: '<f4', shape: [4], data: bytesOf(Float32Array.of(1, 2, 3, 4)) }),
      },
      {
        name: 'f.npy',
        method: 8 as const,
        data: npyBytes({ descr: '>f8', shape: [2, 2], data: new Uint8Array(32), fortran: true }),
      },
    ];
    const rand = prng(42);
    const pick = (n: number) => Math.floor(rand() * n);
    const t0 = performance.now();
    let ok = 0;
    for (const zip64 of [false, true]) {
      const valid = zipBytes(members, { zip64 });
      const p = path.join(dir, `fuzz${zip64 ? '64' : ''}.npz`);
      fs.writeFileSync(p, valid);
      expect(exercise(p, openNpz)).toBe('ok');
      for (let i = 0; i < 300; i++) {
        let buf = Buffer.from(valid);
        for (let s = 0; s < 1 + pick(3); s++) {
          const r = rand();
          if (r < 0.45) buf[pick(buf.length)] ^= 1 << pick(8);
          else if (r < 0.8) buf[pick(buf.length)] = pick(256);
          else if (r < 0.9) buf = buf.subarray(0, pick(buf.length));
          else buf.writeUInt32LE(pick(2 ** 32), Math.max(0, pick(buf.length - 4)));
        }
        fs.writeFileSync(p, buf);
        if (exercise(p, openNpz) === 'ok') ok++;
      }
    }
    expect(ok).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
