/**
 * The parallel decoder (engine/checkpoint/parallel-decode.ts): tensors decoded on worker threads
 * and moved back are bit-identical to readFloat32's, several decode at once, bad data fails
 * naming file and tensor, and idle threads stop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodePool, inOrderAhead } from '../../../electron/engine/checkpoint/parallel-decode.ts';
import { openSafetensors, type SafetensorsFile } from '../../../electron/engine/checkpoint/safetensors.ts';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { EngineError } from '../../../electron/engine/errors.ts';
import { makeTmpDir, prng, removeDir } from './helpers.ts';

let dir = '';
let file = '';
let store: SafetensorsFile;
const pool = new DecodePool({ threads: 3, idleMs: 200 });

function values(n: number, seed: number): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 8);
}

beforeAll(() => {
  dir = makeTmpDir('cw-pdecode-');
  file = path.join(dir, 'w.safetensors');
  // A bf16 NaN (0x7fc0) at element 2345 of an otherwise finite tensor.
  const nan = new Uint16Array(4000).fill(0x3f80);
  nan[2345] = 0x7fc0;
  writeSafetensors(file, [
    { name: 'bf16', dtype: 'BF16', shape: [37, 101], data: values(37 * 101, 1) },
    { name: 'f16', dtype: 'F16', shape: [2500], data: values(2500, 2) },
    { name: 'f32', dtype: 'F32', shape: [3, 1001], data: values(3003, 3) },
    { name: 'one-run', dtype: 'BF16', shape: [999], data: values(999, 4) },
    { name: 'nan', dtype: 'BF16', shape: [4000], data: nan },
  ]);
  store = openSafetensors(file);
});

afterAll(async () => {
  store?.close();
  await pool.close();
  removeDir(dir);
});

describe('parallel decode', () => {
  it('decodes BF16, F16 and F32 tensors bit for bit as readFloat32 does, moved from its thread', async () => {
    for (const name of ['bf16', 'f16', 'f32', 'one-run']) {
      const got = await pool.decode(store.info(name));
      // A plain ArrayBuffer of exactly the tensor (ONNX Runtime takes no shared memory).
      expect(got.buffer).toBeInstanceOf(ArrayBuffer);
      expect(got.byteOffset).toBe(0);
      const want = store.readFloat32(name);
      expect(got.length).toBe(want.length);
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(
        true,
      );
    }
  });

  it('decodes several tensors at once on its threads', async () => {
    const names = ['bf16', 'f16', 'f32', 'bf16', 'f16'];
    const got = await Promise.all(names.map((n) => pool.decode(store.info(n))));
    for (const [i, n] of names.entries())
      expect(Array.from(got[i])).toEqual(Array.from(store.readFloat32(n)));
    expect(pool.running).toBeLessThanOrEqual(3);
  });

  it('fails on a NaN naming the element, the tensor and the file (as readFloat32)', async () => {
    const err = await pool.decode(store.info('nan')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    const e = err as EngineError;
    expect(e.code).toBe('bounds');
    expect(e.message).toContain('element 2345');
    expect(e.message).toContain('nan');
    expect(e.message).toContain(file);
  });

  it('fails on a file cut short, naming it; the pool keeps working', async () => {
    const short = path.join(dir, 'short.safetensors');
    fs.copyFileSync(file, short);
    const cut = openSafetensors(short);
    try {
      fs.truncateSync(short, fs.statSync(short).size - 3000);
      const err = await pool.decode(cut.info('nan')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('io');
      expect((err as EngineError).message).toContain(short);
      expect((err as EngineError).message).toContain('file ends');
    } finally {
      cut.close();
    }
    expect(Array.from(await pool.decode(store.info('f16')))).toEqual(Array.from(store.readFloat32('f16')));
  });

  it('stops its threads when idle and starts them again on demand', async () => {
    await pool.decode(store.info('bf16'));
    expect(pool.running).toBeGreaterThan(0);
    const t0 = Date.now();
    while (pool.running > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(pool.running).toBe(0);
    expect(Array.from(await pool.decode(store.info('bf16')))).toEqual(Array.from(store.readFloat32('bf16')));
  });
});

describe('in order, ahead within a budget', () => {
  it('starts results ahead within the byte budget (at least one), yields them in order', async () => {
    const sizes = [5, 3, 4, 9, 1, 2];
    let started = 0;
    let taken = 0;
    let mostAhead = 0;
    const aheadBytes = () => sizes.slice(taken, started).reduce((a, b) => a + b, 0);
    const got: number[] = [];
    const run = inOrderAhead(
      sizes.map((_, i) => i),
      (i) => sizes[i],
      async (i) => {
        started++;
        // Later items finish first: order comes from the taking, not the finishing.
        await new Promise((r) => setTimeout(r, (sizes.length - i) * 2));
        return i * 10;
      },
      8,
    );
    for await (const [i, v] of run) {
      taken++;
      // Started and waiting to be taken, once this one is out: within 8, or a single item.
      if (started - taken > 1) mostAhead = Math.max(mostAhead, aheadBytes());
      got.push(i, v);
    }
    expect(got).toEqual([0, 0, 1, 10, 2, 20, 3, 30, 4, 40, 5, 50]);
    expect(started).toBe(sizes.length);
    expect(mostAhead).toBeLessThanOrEqual(8);
    expect(mostAhead).toBeGreaterThan(0);
  });

  it('throws a failure when its result is taken, after the ones before it', async () => {
    const got: number[] = [];
    const run = inOrderAhead(
      [0, 1, 2],
      () => 1,
      async (i) => {
        if (i === 1) throw new Error('item 1 failed');
        return i;
      },
      10,
    );
    await expect(
      (async () => {
        for await (const [i] of run) got.push(i);
      })(),
    ).rejects.toThrow('item 1 failed');
    expect(got).toEqual([0]);
  });
});
