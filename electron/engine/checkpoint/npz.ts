/**
 * `.npz` (a zip of `.npy` members) and `.npy` readers.
 *
 * The zip central directory is parsed at open (zip64 included); each member's npy header is
 * read then too. Stored members become `file` locations pointing at the array data inside the
 * zip (no copy); deflated members are inflated on first access and become `memory` locations.
 * Big-endian and Fortran-order arrays are converted to row-major little-endian on first access.
 */
import nodePath from 'node:path';
import zlib from 'node:zlib';
import { EngineError, type EngineErrorContext } from '../errors.ts';
import type { FileReader } from './file-reader.ts';
import { type NpyHeader, normalizeNpyData, npyHeaderLength, parseNpyHeader } from './npy.ts';
import { BaseTensorStore } from './store-base.ts';
import type { DType, TensorInfo, TensorLocation } from './tensor.ts';

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

/**
 * Zip-bomb bounds for deflated members. Deflate cannot exceed ~1032:1, so a larger declared
 * ratio is a lie; and float weights compress little (≤ ~1.2:1), so a member that inflates
 * past NPZ_BOMB_MIN_BYTES at more than NPZ_MAX_RATIO:1 is refused at open, before inflating.
 */
export const NPZ_MAX_RATIO = 100;
export const NPZ_BOMB_MIN_BYTES = 16 * 1024 * 1024;

export interface ZipMember {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** absolute offset of the member's (possibly compressed) data */
  dataOffset: number;
}

/**
 * A TensorInfo whose `memory` location is produced on first access. `location` is an own
 * enumerable accessor, so spreading or copying the info still yields the location.
 */
class LazyTensorInfo implements TensorInfo {
  declare readonly location: TensorLocation;
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: number[],
    readonly byteLength: number,
    readonly sourceFile: string,
    load: () => Uint8Array,
  ) {
    let cached: TensorLocation | undefined;
    Object.defineProperty(this, 'location', {
      enumerable: true,
      configurable: false,
      get: (): TensorLocation => {
        if (!cached) cached = { kind: 'memory', data: load() };
        return cached;
      },
    });
  }
}

function u64(buf: Buffer, off: number, ctx: EngineErrorContext, what: string): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new EngineError('bounds', `zip ${what} ${v} is out of range`, ctx);
  return Number(v);
}

/** Parse the zip central directory of `reader`'s file (local headers are validated too). */
export function readZipDirectory(reader: FileReader): ZipMember[] {
  const file = reader.path;
  const ctx = { file };
  const size = reader.size();
  if (size < 22)
    throw new EngineError('truncated', `file has ${size} bytes, too short for a zip archive`, ctx);
  const tailLen = Math.min(size, 22 + 0xffff);
  const tailStart = size - tailLen;
  const tail = Buffer.from(reader.read(tailStart, tailLen, ctx));
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw new EngineError('header', 'not a zip archive (no end of central directory record)', ctx);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  let cdLimit = tailStart + eocd; // the central directory must end before this
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc >= 0 && tail.readUInt32LE(loc) === SIG_ZIP64_LOCATOR) {
      const z64 = u64(tail, loc + 8, ctx, 'zip64 end record offset');
      if (z64 + 56 > tailStart + loc)
        throw new EngineError('bounds', 'zip64 end record outside the file', ctx);
      const rec = Buffer.from(reader.read(z64, 56, ctx));
      if (rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) {
        throw new EngineError('header', 'bad zip64 end of central directory signature', ctx);
      }
      count = u64(rec, 32, ctx, 'entry count');
      cdSize = u64(rec, 40, ctx, 'central directory size');
      cdOffset = u64(rec, 48, ctx, 'central directory offset');
      cdLimit = z64;
    }
  }
  if (cdOffset + cdSize > cdLimit) {
    throw new EngineError(
      'bounds',
      `central directory [${cdOffset}, ${cdOffset + cdSize}) outside the file`,
      ctx,
    );
  }
  if (count > cdSize / 46)
    throw new EngineError('header', `zip declares ${count} entries in ${cdSize} bytes`, ctx);
  const cd = Buffer.from(reader.read(cdOffset, cdSize, ctx));
  const members: ZipMember[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) {
      throw new EngineError('header', `bad central directory entry ${i}`, ctx);
    }
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc32 = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length)
      throw new EngineError('header', `central directory entry ${i} overruns the directory`, ctx);
    const nameBytes = cd.subarray(p + 46, p + 46 + nameLen);
    const name = flags & 0x800 ? nameBytes.toString('utf8') : nameBytes.toString('latin1');
    const mctx = { file, tensor: name };
    // zip64 extended information: the fields saturated in the fixed record, in order
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (e + 4 + len > extraEnd) throw new EngineError('header', 'zip extra field overruns its entry', mctx);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (what: string): number => {
          if (q + 8 > e + 4 + len)
            throw new EngineError('header', `zip64 extra field lacks the ${what}`, mctx);
          const v = u64(cd, q, mctx, what);
          q += 8;
          return v;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take('uncompressed size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
      }
      e += 4 + len;
    }
    members.push({
      name,
      method,
      flags,
      crc32,
      compressedSize,
      uncompressedSize,
      localHeaderOffset,
      dataOffset: -1,
    });
    p = end;
  }
  for (const m of members) {
    const mctx = { file, tensor: m.name };
    if (m.localHeaderOffset + 30 > cdOffset) {
      throw new EngineError(
        'bounds',
        `local header offset ${m.localHeaderOffset} outside the member area`,
        mctx,
      );
    }
    const lh = Buffer.from(reader.read(m.localHeaderOffset, 30, mctx));
    if (lh.readUInt32LE(0) !== SIG_LOCAL)
      throw new EngineError('header', 'bad zip local header signature', mctx);
    m.dataOffset = m.localHeaderOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (m.dataOffset + m.compressedSize > cdOffset) {
      throw new EngineError(
        'bounds',
        `member data [${m.dataOffset}, ${m.dataOffset + m.compressedSize}) runs past the member area (${cdOffset})`,
        mctx,
      );
    }
  }
  return members;
}

function inflateError(e: unknown, ctx: EngineErrorContext): EngineError {
  if (e instanceof EngineError) return e;
  return new EngineError('header', `cannot inflate member: ${(e as Error).message}`, ctx);
}

export class NpzFile extends BaseTensorStore {
  readonly description: string;
  /** per tensor: its npy header */
  readonly npyHeaders = new Map<string, NpyHeader>();
  private readonly zip: FileReader;

  constructor(readonly path: string) {
    super();
    this.description = `npz ${path}`;
    this.zip = this.reader(path);
    try {
      for (const m of readZipDirectory(this.zip)) {
        if (!m.name.endsWith('.npy') || m.name.endsWith('/')) continue;
        this.addMember(m);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  protected primaryFile(): string {
    return this.path;
  }

  private addMember(m: ZipMember): void {
    const name = m.name.slice(0, -'.npy'.length);
    const ctx = { file: this.path, tensor: name };
    if (this.entries.has(name)) throw new EngineError('header', 'duplicate member in npz', ctx);
    if (m.flags & 1) throw new EngineError('unsupported', 'encrypted zip members are not supported', ctx);
    let h: NpyHeader;
    if (m.method === 0) {
      if (m.compressedSize !== m.uncompressedSize) {
        throw new EngineError(
          'header',
          'stored member with different compressed and uncompressed sizes',
          ctx,
        );
      }
      const prefixLen = Math.min(12, m.uncompressedSize);
      const hl = npyHeaderLength(this.zip.read(m.dataOffset, prefixLen, ctx), ctx);
      if (hl > m.uncompressedSize)
        throw new EngineError('truncated', 'npy member ends inside its header', ctx);
      h = parseNpyHeader(this.zip.read(m.dataOffset, hl, ctx), ctx);
    } else if (m.method === 8) {
      const ratio = m.uncompressedSize / Math.max(1, m.compressedSize);
      if (ratio > 1100 || (m.uncompressedSize > NPZ_BOMB_MIN_BYTES && ratio > NPZ_MAX_RATIO)) {
        throw new EngineError(
          'bounds',
          `deflated member of ${m.compressedSize} bytes declares ${m.uncompressedSize} bytes inflated ` +
            `(ratio ${Math.round(ratio)}:1, limit ${NPZ_MAX_RATIO}:1 above ${NPZ_BOMB_MIN_BYTES} bytes): ` +
            'refused as a possible zip bomb',
          ctx,
        );
      }
      h = this.inflatedHeader(m, ctx);
    } else {
      throw new EngineError(
        'unsupported',
        `zip compression method ${m.method} (only stored and deflated)`,
        ctx,
      );
    }
    const total = h.headerLength + h.dataLength;
    if (m.uncompressedSize < total) {
      throw new EngineError(
        'truncated',
        `npy member holds ${m.uncompressedSize} bytes, its header declares ${total}`,
        ctx,
      );
    }
    if (m.uncompressedSize > total) {
      throw new EngineError(
        'bounds',
        `${m.uncompressedSize - total} trailing bytes after the npy array`,
        ctx,
      );
    }
    this.npyHeaders.set(name, h);
    const needsTransform = h.bigEndian || h.fortranOrder;
    let info: TensorInfo;
    if (m.method === 0 && !needsTransform) {
      info = {
        name,
        dtype: h.dtype,
        shape: h.shape,
        byteLength: h.dataLength,
        location: { kind: 'file', file: this.path, byteOffset: m.dataOffset + h.headerLength },
        sourceFile: this.path,
      };
    } else {
      const load =
        m.method === 0
          ? () => normalizeNpyData(this.zip.read(m.dataOffset + h.headerLength, h.dataLength, ctx), h)
          : () => {
              const all = this.inflateAll(m, ctx);
              // a plain Uint8Array view (not a Buffer) over the inflated array data
              const data = new Uint8Array(all.buffer, all.byteOffset + h.headerLength, h.dataLength);
              return normalizeNpyData(data, h);
            };
      info = new LazyTensorInfo(name, h.dtype, h.shape, h.dataLength, this.path, load);
    }
    this.entries.set(name, info);
  }

  /** Inflate just enough of a deflated member to parse its npy header. */
  private inflatedHeader(m: ZipMember, ctx: EngineErrorContext): NpyHeader {
    let chunk = 4096;
    for (;;) {
      const take = Math.min(chunk, m.compressedSize);
      let out: Buffer;
      try {
        out = zlib.inflateRawSync(this.zip.read(m.dataOffset, take, ctx), {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
          maxOutputLength: Math.max(1, m.uncompressedSize),
        });
      } catch (e) {
        throw inflateError(e, ctx);
      }
      if (out.length >= 12 || take === m.compressedSize) {
        const hl = npyHeaderLength(out, ctx);
        if (out.length >= hl) return parseNpyHeader(out, ctx);
        if (hl > m.uncompressedSize)
          throw new EngineError('truncated', 'npy member ends inside its header', ctx);
      }
      if (take === m.compressedSize)
        throw new EngineError('truncated', 'npy member ends inside its header', ctx);
      chunk *= 4;
    }
  }

  private inflateAll(m: ZipMember, ctx: EngineErrorContext): Buffer {
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(this.zip.read(m.dataOffset, m.compressedSize, ctx), {
        maxOutputLength: Math.max(1, m.uncompressedSize),
      });
    } catch (e) {
      throw inflateError(e, ctx);
    }
    if (out.length !== m.uncompressedSize) {
      throw new EngineError(
        'truncated',
        `member inflates to ${out.length} bytes, the zip directory declares ${m.uncompressedSize}`,
        ctx,
      );
    }
    if (typeof zlib.crc32 === 'function' && zlib.crc32(out) >>> 0 !== m.crc32 >>> 0) {
      throw new EngineError('header', 'member CRC-32 mismatch (corrupt archive)', ctx);
    }
    return out;
  }
}

/** Open an `.npz` archive; member `W_enc.npy` becomes tensor `W_enc`. */
export function openNpz(file: string): NpzFile {
  return new NpzFile(file);
}

/** A single `.npy` file as a one-tensor store (named after the file, without `.npy`). */
export class NpyFile extends BaseTensorStore {
  readonly description: string;
  readonly header: NpyHeader;

  constructor(readonly path: string) {
    super();
    this.description = `npy ${path}`;
    const name = nodePath.basename(path, '.npy');
    const ctx = { file: path, tensor: name };
    const r = this.reader(path);
    try {
      const size = r.size();
      const hl = npyHeaderLength(r.read(0, Math.min(12, size), ctx), ctx);
      if (hl > size) throw new EngineError('truncated', 'npy file ends inside its header', ctx);
      const h = parseNpyHeader(r.read(0, hl, ctx), ctx);
      if (size < h.headerLength + h.dataLength) {
        throw new EngineError(
          'truncated',
          `npy file has ${size} bytes, needs ${h.headerLength + h.dataLength}`,
          ctx,
        );
      }
      if (size > h.headerLength + h.dataLength) {
        throw new EngineError('bounds', 'trailing bytes after the npy array', ctx);
      }
      this.header = h;
      const info: TensorInfo =
        h.bigEndian || h.fortranOrder
          ? new LazyTensorInfo(name, h.dtype, h.shape, h.dataLength, path, () =>
              normalizeNpyData(r.read(h.headerLength, h.dataLength, ctx), h),
            )
          : {
              name,
              dtype: h.dtype,
              shape: h.shape,
              byteLength: h.dataLength,
              location: { kind: 'file', file: path, byteOffset: h.headerLength },
              sourceFile: path,
            };
      this.entries.set(name, info);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  protected primaryFile(): string {
    return this.path;
  }
}

export function openNpy(file: string): NpyFile {
  return new NpyFile(file);
}
