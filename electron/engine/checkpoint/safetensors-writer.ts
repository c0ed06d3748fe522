/**
 * safetensors writer (tests, caches, exports). Same layout as the reference writer: 8-byte
 * little-endian header length, compact JSON header padded with spaces to a multiple of 8,
 * then the tensors' bytes contiguous in the given order.
 */
import { constants as bufferConstants } from 'node:buffer';
import fs from 'node:fs';
import { assertFreeDisk } from '../disk-space.ts';
import { EngineError } from '../errors.ts';
import { DTYPE_SIZE, encodeFromFloat32, isDType, numElements } from './dtype.ts';
import { byteWindow, IO_CHUNK } from './file-reader.ts';
import type { DType } from './tensor.ts';

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /**
   * Float32Array: values, converted to `dtype` piece by piece while writing (F32: written as
   * they are, no copy). Any other typed array: the raw little-endian bytes, length checked.
   */
  data: Float32Array | ArrayBufferView;
}

/** One tensor's bytes: a view written as is, or float32 values encoded piece by piece. */
type Chunk = { raw: ArrayBufferView } | { values: Float32Array; dtype: DType };

interface Prepared {
  /** length prefix + padded JSON header */
  head: Buffer;
  chunks: Chunk[];
  dataLength: number;
}

function chunkBytes(c: Chunk): number {
  return 'raw' in c ? c.raw.byteLength : c.values.length * DTYPE_SIZE[c.dtype];
}

/** The chunk's bytes as pieces of at most IO_CHUNK bytes (64-bit offsets, no 4 GiB views). */
function* pieces(c: Chunk, ctx: { file: string; tensor: string }): Generator<Uint8Array> {
  const step = IO_CHUNK.bytes;
  if ('raw' in c) {
    for (let off = 0; off < c.raw.byteLength; off += step)
      yield byteWindow(c.raw, off, Math.min(step, c.raw.byteLength - off));
    return;
  }
  const elems = Math.max(1, Math.floor(step / DTYPE_SIZE[c.dtype]));
  for (let i = 0; i < c.values.length; i += elems)
    yield encodeFromFloat32(c.dtype, c.values.subarray(i, Math.min(i + elems, c.values.length)), ctx);
}

function prepare(
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> | undefined,
  fileForErrors: string,
): Prepared {
  // null prototype: a tensor named '__proto__' must become an ordinary key
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new EngineError('argument', `metadata value for ${k} must be a string`, {
          file: fileForErrors,
          field: `__metadata__.${k}`,
        });
      }
    }
    header['__metadata__'] = metadata;
  }
  const chunks: Chunk[] = [];
  let offset = 0;
  for (const t of tensors) {
    const ctx = { file: fileForErrors, tensor: t.name };
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw new EngineError('argument', `invalid tensor name ${JSON.stringify(t.name)}`, ctx);
    }
    if (Object.hasOwn(header, t.name)) throw new EngineError('argument', 'duplicate tensor name', ctx);
    if (!isDType(t.dtype)) throw new EngineError('dtype', `unknown dtype ${String(t.dtype)}`, ctx);
    const n = numElements(t.shape, ctx);
    let chunk: Chunk;
    if (t.data instanceof Float32Array) {
      if (t.data.length !== n) {
        throw new EngineError(
          'shape',
          `data has ${t.data.length} values, shape [${t.shape.join(', ')}] needs ${n}`,
          ctx,
        );
      }
      chunk = t.dtype === 'F32' ? { raw: t.data } : { values: t.data, dtype: t.dtype };
    } else if (ArrayBuffer.isView(t.data)) {
      const want = n * DTYPE_SIZE[t.dtype];
      if (t.data.byteLength !== want) {
        throw new EngineError(
          'shape',
          `raw data has ${t.data.byteLength} bytes, shape [${t.shape.join(', ')}] of ${t.dtype} needs ${want}`,
          ctx,
        );
      }
      chunk = { raw: t.data };
    } else {
      throw new EngineError('argument', 'data must be a Float32Array or a typed array of raw bytes', ctx);
    }
    const length = chunkBytes(chunk);
    header[t.name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + length],
    };
    chunks.push(chunk);
    offset += length;
  }
  return { head: encodeHeader(header), chunks, dataLength: offset };
}

/** A safetensors header as the file starts with it: u64 length, then the JSON space-padded to 8 bytes. */
export function encodeHeader(header: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  const head = Buffer.alloc(8 + json.length + pad, 0x20);
  head.writeBigUInt64LE(BigInt(json.length + pad), 0);
  json.copy(head, 8);
  return head;
}

/** Encode tensors (+ optional `__metadata__`) as a complete safetensors file in memory. */
export function encodeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
  fileForErrors = '<memory>',
): Buffer {
  const { head, chunks, dataLength } = prepare(tensors, metadata, fileForErrors);
  const total = head.length + dataLength;
  if (total > bufferConstants.MAX_LENGTH) {
    throw new EngineError(
      'resources',
      `a safetensors file of ${total} bytes does not fit in one in-memory buffer (at most ${bufferConstants.MAX_LENGTH}); write it to a file`,
      { file: fileForErrors },
    );
  }
  const out = Buffer.allocUnsafe(total);
  head.copy(out, 0);
  let pos = head.length;
  for (const [i, c] of chunks.entries()) {
    for (const p of pieces(c, { file: fileForErrors, tensor: tensors[i].name })) {
      out.set(p, pos);
      pos += p.byteLength;
    }
  }
  return out;
}

/**
 * Write a safetensors file (header + tensors in the given order, contiguous). Tensors of any
 * size: written in pieces of at most IO_CHUNK bytes, float32 values encoded piece by piece.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): void {
  const { head, chunks, dataLength } = prepare(tensors, metadata, path);
  assertFreeDisk(path, head.length + dataLength);
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'w');
    writeAll(fd, head);
    for (const [i, c] of chunks.entries())
      for (const p of pieces(c, { file: path, tensor: tensors[i].name })) writeAll(fd, p);
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw new EngineError('io', `cannot write safetensors: ${(e as Error).message}`, { file: path });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes all of `data` (a short write continues where it stopped). */
export function writeAll(fd: number, data: ArrayBufferView): void {
  let done = 0;
  while (done < data.byteLength) {
    const n = Math.min(data.byteLength - done, IO_CHUNK.bytes);
    done += fs.writeSync(fd, byteWindow(data, done, n));
  }
}
