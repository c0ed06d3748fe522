/**
 * 64-bit sizes in the safetensors reader and writer, without multi-GB files:
 *  - the chunked paths (reads and writes in IO_CHUNK pieces, float32 values encoded piece by
 *    piece) with the chunk lowered to a few bytes, so every tensor spans many pieces;
 *  - offsets past 4 GiB through sparse files (a hole of 4 GiB takes no disk space);
 *  - tensors too large for one typed array are refused with EngineError('resources') before
 *    anything is allocated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeToFloat32, encodeFromFloat32 } from '../../../electron/engine/checkpoint/dtype.ts';
import { IO_CHUNK, MAX_TYPED_ARRAY_LENGTH } from '../../../electron/engine/checkpoint/file-reader.ts';
import { DecodePool } from '../../../electron/engine/checkpoint/parallel-decode.ts';
import { openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import {
  encodeSafetensors,
  type TensorToWrite,
  writeSafetensors,
} from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { expectEngineError, makeTmpDir, removeDir } from './helpers.ts';

let dir: string;
beforeAll(() => {
  dir = makeTmpDir('cw-large-io-');
});
afterAll(() => removeDir(dir));
const defaultChunk = IO_CHUNK.bytes;
afterEach(() => {
  IO_CHUNK.bytes = defaultChunk;
});

/**
 * A safetensors file whose first tensor `pad` (U8) is `padBytes` long and lies in a hole of
 * the file (sparse: no disk space), followed by `tail` (the given tensor).
 */
function sparseFile(
  name: string,
  padBytes: number,
  tail: { dtype: string; shape: number[]; bytes: Uint8Array; declaredBytes?: number },
): string {
  const tailBytes = tail.declaredBytes ?? tail.bytes.byteLength;
  const header = JSON.stringify({
    pad: { dtype: 'U8', shape: [padBytes], data_offsets: [0, padBytes] },
    tail: { dtype: tail.dtype, shape: tail.shape, data_offsets: [padBytes, padBytes + tailBytes] },
  });
  const json = Buffer.from(header.padEnd(Math.ceil(header.length / 8) * 8, ' '));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, prefix, 0, 8, 0);
    fs.writeSync(fd, json, 0, json.length, 8);
    const dataStart = 8 + json.length;
    fs.ftruncateSync(fd, dataStart + padBytes + tailBytes);
    fs.writeSync(fd, tail.bytes, 0, tail.bytes.byteLength, dataStart + padBytes);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

describe('chunked reads and writes', () => {
  it('round-trips float32, encoded and raw tensors through pieces of a few bytes', () => {
    IO_CHUNK.bytes = 12; // not a multiple of 8: pieces split elements of F64 / I64 apart
    const values = Float32Array.from({ length: 101 }, (_, i) => Math.sin(i) * 100 + (i % 7) / 8);
    const ints = Int32Array.from({ length: 37 }, (_, i) => (i - 18) * 1_000_003);
    const tensors: TensorToWrite[] = [
      { name: 'f32', dtype: 'F32', shape: [101], data: values },
      { name: 'bf16', dtype: 'BF16', shape: [101], data: values },
      { name: 'f64', dtype: 'F64', shape: [101], data: values },
      { name: 'i32', dtype: 'I32', shape: [37], data: ints },
      { name: 'rows', dtype: 'F16', shape: [20, 5], data: values.subarray(0, 100) },
    ];
    const p = path.join(dir, 'chunked.safetensors');
    writeSafetensors(p, tensors, { note: 'x' });
    // The same bytes as an unchunked, in-memory encoding.
    IO_CHUNK.bytes = defaultChunk;
    const reference = encodeSafetensors(tensors, { note: 'x' });
    expect(Buffer.compare(fs.readFileSync(p), reference)).toBe(0);

    IO_CHUNK.bytes = 12;
    const st = openSafetensors(p);
    try {
      expect(Array.from(st.readFloat32('f32'))).toEqual(Array.from(values));
      const bf16 = decodeToFloat32('BF16', encodeFromFloat32('BF16', values));
      expect(Array.from(st.readFloat32('bf16'))).toEqual(Array.from(bf16));
      expect(Array.from(st.readFloat32('f64'))).toEqual(Array.from(values));
      const back = new Int32Array(37);
      st.readRawInto('i32', back);
      expect(Array.from(back)).toEqual(Array.from(ints));
      const f16 = decodeToFloat32('F16', encodeFromFloat32('F16', values.subarray(0, 100)));
      const rows = st.readRowsFloat32('rows', [19, 3, 4]);
      expect(Array.from(rows)).toEqual([
        ...f16.subarray(95, 100),
        ...f16.subarray(15, 20),
        ...f16.subarray(20, 25),
      ]);
      expectEngineError(() => st.readRawInto('i32', new Int32Array(36)), 'argument', 'i32');
    } finally {
      st.close();
    }
  });
});

describe('offsets past 4 GiB (sparse files)', () => {
  it('reads a tensor that starts after 2^32 bytes of data', () => {
    const pad = 2 ** 32 + 8;
    const values = Float32Array.of(1.5, -2, 3.25, 1e-30);
    const bytes = encodeFromFloat32('F32', values);
    let file: string;
    try {
      file = sparseFile('far.safetensors', pad, { dtype: 'F32', shape: [4], bytes });
    } catch (e) {
      console.warn(`skipped: no sparse 4 GiB file here (${(e as Error).message})`);
      return;
    }
    const st = openSafetensors(file);
    try {
      expect(st.info('tail').location).toMatchObject({ kind: 'file' });
      expect(st.info('pad').byteLength).toBe(pad);
      expect(Array.from(st.readFloat32('tail'))).toEqual(Array.from(values));
      IO_CHUNK.bytes = 4;
      expect(Array.from(st.readFloat32('tail'))).toEqual(Array.from(values));
      expect(Array.from(st.readRawRange('pad', pad - 4, 4))).toEqual([0, 0, 0, 0]);
      // 4 GiB + 8 bytes cannot be one Uint8Array: refused by name, nothing allocated
      expectEngineError(() => st.readRaw('pad'), 'resources', 'pad');
    } finally {
      st.close();
      fs.rmSync(file, { force: true });
    }
  });

  it('decodes on the pool a tensor that starts after 2^32 bytes of data', async () => {
    const pad = 2 ** 32 + 8;
    const values = Float32Array.of(1.5, -2, 3.25, 1e-30, 7);
    const pool = new DecodePool({ threads: 1 });
    for (const dtype of ['F32', 'BF16'] as const) {
      let file: string;
      try {
        file = sparseFile(`far-pool-${dtype}.safetensors`, pad, {
          dtype,
          shape: [5],
          bytes: encodeFromFloat32(dtype, values),
        });
      } catch (e) {
        console.warn(`skipped: no sparse 4 GiB file here (${(e as Error).message})`);
        await pool.close();
        return;
      }
      const st = openSafetensors(file);
      try {
        expect(Array.from(await pool.decode(st.info('tail')))).toEqual(Array.from(st.readFloat32('tail')));
      } finally {
        st.close();
        fs.rmSync(file, { force: true });
      }
    }
    await pool.close();
  });

  it('refuses a float32 tensor with more elements than one typed array holds', () => {
    const n = MAX_TYPED_ARRAY_LENGTH + 4;
    let file: string;
    try {
      file = sparseFile('huge.safetensors', 8, {
        dtype: 'F32',
        shape: [n],
        bytes: new Uint8Array(16),
        declaredBytes: n * 4,
      });
    } catch (e) {
      console.warn(`skipped: no sparse ${n * 4}-byte file here (${(e as Error).message})`);
      return;
    }
    const st = openSafetensors(file);
    try {
      expectEngineError(() => st.readFloat32('tail'), 'resources', 'tail', 'read it in parts');
      expect(Array.from(st.readRowsFloat32('tail', [0, 1, 2, 3]))).toEqual([0, 0, 0, 0]);
    } finally {
      st.close();
      fs.rmSync(file, { force: true });
    }
  });
});
