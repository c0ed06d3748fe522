/**
 * safetensors writer (tests, caches, exports). Same layout as the reference writer: 8-byte
 * little-endian header length, compact JSON header padded with spaces to a multiple of 8,
 * then the tensors' bytes contiguous in the given order.
 */
import fs from 'node:fs';
import { EngineError } from '../errors.ts';
import { DTYPE_SIZE, encodeFromFloat32, isDType, numElements } from './dtype.ts';
import type { DType } from './tensor.ts';

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** Float32Array: converted to `dtype`. Uint8Array: the raw little-endian bytes, length checked. */
  data: Float32Array | Uint8Array;
}

interface Prepared {
  /** length prefix + padded JSON header */
  head: Buffer;
  chunks: Uint8Array[];
  dataLength: number;
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
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const ctx = { file: fileForErrors, tensor: t.name };
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw new EngineError('argument', `invalid tensor name ${JSON.stringify(t.name)}`, ctx);
    }
    if (Object.hasOwn(header, t.name)) throw new EngineError('argument', 'duplicate tensor name', ctx);
    if (!isDType(t.dtype)) throw new EngineError('dtype', `unknown dtype ${String(t.dtype)}`, ctx);
    const n = numElements(t.shape, ctx);
    let bytes: Uint8Array;
    if (t.data instanceof Float32Array) {
      if (t.data.length !== n) {
        throw new EngineError(
          'shape',
          `data has ${t.data.length} values, shape [${t.shape.join(', ')}] needs ${n}`,
          ctx,
        );
      }
      bytes = encodeFromFloat32(t.dtype, t.data, ctx);
    } else if (t.data instanceof Uint8Array) {
      const want = n * DTYPE_SIZE[t.dtype];
      if (t.data.byteLength !== want) {
        throw new EngineError(
          'shape',
          `raw data has ${t.data.byteLength} bytes, shape [${t.shape.join(', ')}] of ${t.dtype} needs ${want}`,
          ctx,
        );
      }
      bytes = t.data;
    } else {
      throw new EngineError('argument', 'data must be a Float32Array or a Uint8Array', ctx);
    }
    header[t.name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.byteLength],
    };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  const head = Buffer.alloc(8 + json.length + pad, 0x20);
  head.writeBigUInt64LE(BigInt(json.length + pad), 0);
  json.copy(head, 8);
  return { head, chunks, dataLength: offset };
}

/** Encode tensors (+ optional `__metadata__`) as a complete safetensors file in memory. */
export function encodeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
  fileForErrors = '<memory>',
): Buffer {
  const { head, chunks, dataLength } = prepare(tensors, metadata, fileForErrors);
  const out = Buffer.allocUnsafe(head.length + dataLength);
  head.copy(out, 0);
  let pos = head.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.byteLength;
  }
  return out;
}

/** Write a safetensors file (header + tensors in the given order, contiguous). */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): void {
  const { head, chunks } = prepare(tensors, metadata, path);
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'w');
    writeAll(fd, head);
    for (const c of chunks) writeAll(fd, c);
  } catch (e) {
    throw new EngineError('io', `cannot write safetensors: ${(e as Error).message}`, { file: path });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) {
    done += fs.writeSync(fd, data, done, Math.min(data.byteLength - done, 1 << 30));
  }
}
