/** Test helpers: temp folders, hand-made safetensors / npy / zip bytes, EngineError checks. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'vitest';
import { EngineError, type EngineErrorCode } from '../../../electron/engine/errors.ts';
import { prng } from '../../fixtures/prng.ts';

export { prng };

/** A fresh temp folder; `preferMemory` uses /dev/shm when available (fast rewrites, for fuzzing). */
export function makeTmpDir(prefix = 'cw-ckpt-', preferMemory = false): string {
  let base = os.tmpdir();
  if (preferMemory) {
    try {
      fs.accessSync('/dev/shm', fs.constants.W_OK);
      base = '/dev/shm';
    } catch {
      // no writable /dev/shm: stay on the regular temp folder
    }
  }
  return fs.mkdtempSync(path.join(base, prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Run `fn`, expect an EngineError with `code` whose message mentions each of `mentions`
 * (e.g. the file path and the tensor name). Returns the error.
 */
export function expectEngineError(
  fn: () => unknown,
  code: EngineErrorCode,
  ...mentions: string[]
): EngineError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof EngineError)) {
    throw new Error(
      `expected EngineError(${code}), got ${caught === undefined ? 'no error' : String(caught)}`,
    );
  }
  expect(caught.code, caught.message).toBe(code);
  for (const m of mentions) expect(caught.message).toContain(m);
  return caught;
}

export async function expectEngineErrorAsync(
  fn: () => Promise<unknown>,
  code: EngineErrorCode,
  ...mentions: string[]
): Promise<EngineError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof EngineError)) {
    throw new Error(
      `expected EngineError(${code}), got ${caught === undefined ? 'no error' : String(caught)}`,
    );
  }
  expect(caught.code, caught.message).toBe(code);
  for (const m of mentions) expect(caught.message).toContain(m);
  return caught;
}

/** A safetensors file from a header (object or raw JSON text) and `dataLength` data bytes. */
export function rawSafetensors(
  header: Record<string, unknown> | string,
  dataLength: number,
  lengthPrefix?: bigint,
): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + dataLength);
  out.writeBigUInt64LE(lengthPrefix ?? BigInt(json.length), 0);
  json.copy(out, 8);
  for (let i = 0; i < dataLength; i++) out[8 + json.length + i] = i & 0xff;
  return out;
}

/** `.npy` bytes (format `version` 1, 2 or 3) for raw little-endian `data`. */
export function npyBytes(opts: {
  descr: string;
  shape: number[];
  data: Uint8Array;
  fortran?: boolean;
  version?: 1 | 2 | 3;
}): Uint8Array {
  const version = opts.version ?? 1;
  const shape = opts.shape.length === 1 ? `(${opts.shape[0]},)` : `(${opts.shape.join(', ')})`;
  let dict = `{'descr': '${opts.descr}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head, 0);
  if (version === 1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, version === 3 ? 'utf8' : 'latin1'), opts.data]);
}

export interface ZipEntry {
  name: string;
  data: Uint8Array;
  /** 0 = stored, 8 = deflated */
  method: 0 | 8;
}

/**
 * A zip archive. With `zip64`, every central directory entry stores its sizes and offset
 * in a zip64 extra field and the archive ends with zip64 end records (as large npz files).
 */
export function zipBytes(entries: ZipEntry[], opts: { zip64?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const payload = e.method === 8 ? zlib.deflateRawSync(e.data) : Buffer.from(e.data);
    const crc = zlib.crc32(e.data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(opts.zip64 ? 45 : 20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(payload.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    parts.push(local, name, payload);
    let extra = Buffer.alloc(0);
    if (opts.zip64) {
      extra = Buffer.alloc(4 + 24);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(e.data.length), 4);
      extra.writeBigUInt64LE(BigInt(payload.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(45, 4);
    cd.writeUInt16LE(opts.zip64 ? 45 : 20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(e.method, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(opts.zip64 ? 0xffffffff : payload.length, 20);
    cd.writeUInt32LE(opts.zip64 ? 0xffffffff : e.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt16LE(extra.length, 30);
    cd.writeUInt32LE(opts.zip64 ? 0xffffffff : offset, 42);
    central.push(cd, name, extra);
    offset += 30 + name.length + payload.length;
  }
  const cdBuf = Buffer.concat(central);
  const cdOffset = offset;
  const tail: Buffer[] = [];
  if (opts.zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(entries.length), 24);
    rec.writeBigUInt64LE(BigInt(entries.length), 32);
    rec.writeBigUInt64LE(BigInt(cdBuf.length), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdBuf.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(opts.zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cdBuf.length, 12);
  eocd.writeUInt32LE(opts.zip64 ? 0xffffffff : cdOffset, 16);
  return Buffer.concat([...parts, cdBuf, ...tail, eocd]);
}

/** Little-endian bytes of a typed array. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
