/**
 * Shared TensorStore machinery: a name → TensorInfo table, positional reads for `file`
 * locations (through lazily opened FileReaders), copies for `memory` locations, float32
 * decoding and row reads that fetch only the requested rows (adjacent rows coalesced).
 */
import { EngineError, type EngineErrorContext } from '../errors.ts';
import { copyBytes, DTYPE_SIZE, decodeToFloat32, numElements } from './dtype.ts';
import { assertArrayLength, byteWindow, FileReader, IO_CHUNK } from './file-reader.ts';
import type { TensorInfo, TensorStore } from './tensor.ts';

/** Bytes of the reused buffer that non-F32 tensors are read through when decoded in place. */
export const DECODE_PIECE = { bytes: 16 * 1024 * 1024 };
let piece: Uint8Array | null = null;
function decodePiece(): Uint8Array {
  if (!piece || piece.byteLength !== DECODE_PIECE.bytes) piece = new Uint8Array(DECODE_PIECE.bytes);
  return piece;
}

/**
 * Throws EngineError('bounds') naming the tensor (and file, via `ctx`) when `values` holds a
 * NaN or ±Inf (x − x is 0 exactly for finite x). One pass, no allocation.
 */
export function assertFinite(values: Float32Array, ctx: EngineErrorContext, offset = 0): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) {
      throw new EngineError('bounds', `value ${v} at element ${offset + i} is not finite (NaN or ±Inf)`, ctx);
    }
  }
}

/** Upper bound of bytes fetched by one coalesced row read. */
const MAX_RUN_BYTES = 64 * 1024 * 1024;

export abstract class BaseTensorStore implements TensorStore {
  abstract readonly description: string;
  protected readonly entries = new Map<string, TensorInfo>();
  private readonly readers = new Map<string, FileReader>();
  /** Tensors whose every value was found finite (see readFloat32). */
  private readonly finiteTensors = new Set<string>();

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.entries.get(name);
    if (!info) {
      throw new EngineError('missing', `tensor not found in ${this.description}`, {
        file: this.primaryFile(),
        tensor: name,
      });
    }
    return info;
  }

  /** The file named in errors about this store as a whole. */
  protected abstract primaryFile(): string;

  protected reader(file: string): FileReader {
    let r = this.readers.get(file);
    if (!r) {
      r = new FileReader(file);
      this.readers.set(file, r);
    }
    return r;
  }

  /** `byteLength` bytes of tensor `name` starting at byte `byteStart` of its data, copied. */
  readRawRange(name: string, byteStart: number, byteLength: number): Uint8Array {
    const info = this.info(name);
    const ctx = { file: info.sourceFile, tensor: name };
    if (
      !Number.isSafeInteger(byteStart) ||
      !Number.isSafeInteger(byteLength) ||
      byteStart < 0 ||
      byteLength < 0 ||
      byteStart + byteLength > info.byteLength
    ) {
      throw new EngineError(
        'argument',
        `byte range [${byteStart}, ${byteStart + byteLength}) outside the tensor's ${info.byteLength} bytes`,
        ctx,
      );
    }
    const loc = info.location;
    if (loc.kind === 'memory') return copyBytes(loc.data, byteStart, byteStart + byteLength);
    return this.reader(loc.file).read(loc.byteOffset + byteStart, byteLength, ctx);
  }

  readRaw(name: string): Uint8Array {
    return this.readRawRange(name, 0, this.info(name).byteLength);
  }

  /**
   * The tensor's bytes read straight into `target` (any typed array whose byteLength is the
   * tensor's), in pieces: no intermediate copy, and no 4 GiB limit of a single Uint8Array.
   */
  readRawInto(name: string, target: ArrayBufferView): void {
    const info = this.info(name);
    const ctx = { file: info.sourceFile, tensor: name };
    if (target.byteLength !== info.byteLength) {
      throw new EngineError(
        'argument',
        `target has ${target.byteLength} bytes, the tensor ${info.byteLength}`,
        ctx,
      );
    }
    const loc = info.location;
    if (loc.kind === 'memory') {
      byteWindow(target, 0, info.byteLength).set(loc.data.subarray(0, info.byteLength));
      return;
    }
    this.reader(loc.file).readInto(target, 0, info.byteLength, loc.byteOffset, ctx);
  }

  /**
   * The tensor decoded to float32. With `out` (exactly the element count) it is filled in
   * place: non-F32 files are read through one reused piece buffer and decoded piece by piece,
   * so streaming a layer's weights into reused arrays touches no fresh memory (first touches
   * of fresh pages cost ~10× the decode itself in a VM).
   */
  readFloat32(name: string, out?: Float32Array): Float32Array {
    const info = this.info(name);
    const ctx = { file: info.sourceFile, tensor: name };
    const n = numElements(info.shape, ctx);
    if (out && out.length !== n) {
      throw new EngineError('argument', `output holds ${out.length} values, the tensor ${n}`, ctx);
    }
    const loc = info.location;
    // Every decoded value is checked once per tensor (a pass over it): a NaN or Inf weight fails
    // here, naming file and tensor, not as a non-finite graph entry after a whole attribution;
    // streamed weights, decoded per forward, are not scanned again.
    const fresh = !this.finiteTensors.has(name);
    const checked = (r: Float32Array, offset = 0): Float32Array => {
      if (fresh) assertFinite(r, ctx, offset);
      return r;
    };
    const done = (r: Float32Array): Float32Array => {
      this.finiteTensors.add(name);
      return r;
    };
    if (!out && (loc.kind === 'memory' || info.byteLength <= IO_CHUNK.bytes)) {
      const raw = this.readRaw(name);
      // the raw copy is ours and aligned: F32 needs no second copy
      if (info.dtype === 'F32' && raw.byteOffset % 4 === 0) {
        return done(checked(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)));
      }
      return done(checked(decodeToFloat32(info.dtype, raw, undefined, ctx)));
    }
    // One output array, filled in pieces (F32 read in place, others decoded).
    if (!out) assertArrayLength(n, `tensor ${name}`, ctx);
    return done(checked(this.readFloat32Range(name, 0, out ?? new Float32Array(n))));
  }

  /**
   * Elements [start, start + out.length) of the tensor (flat, row-major) decoded into `out`,
   * through the reused piece buffer: a streamed chunk of rows allocates nothing.
   */
  readFloat32Range(name: string, start: number, out: Float32Array): Float32Array {
    const info = this.info(name);
    const ctx = { file: info.sourceFile, tensor: name };
    const n = numElements(info.shape, ctx);
    if (!Number.isSafeInteger(start) || start < 0 || start + out.length > n) {
      throw new EngineError(
        'argument',
        `elements [${start}, ${start + out.length}) outside the tensor's ${n}`,
        ctx,
      );
    }
    const size = DTYPE_SIZE[info.dtype];
    const loc = info.location;
    if (loc.kind === 'memory') {
      return decodeToFloat32(
        info.dtype,
        loc.data.subarray(start * size, (start + out.length) * size),
        out,
        ctx,
      );
    }
    const reader = this.reader(loc.file);
    if (info.dtype === 'F32') {
      // straight into `out` (readInto windows it per chunk: no view over 4 GiB)
      reader.readInto(out, 0, out.byteLength, loc.byteOffset + start * 4, ctx);
      return out;
    }
    const piece = decodePiece();
    const step = Math.max(1, Math.floor(piece.byteLength / size));
    for (let i = 0; i < out.length; i += step) {
      const m = Math.min(step, out.length - i);
      reader.readInto(piece, 0, m * size, loc.byteOffset + (start + i) * size, ctx);
      decodeToFloat32(info.dtype, piece.subarray(0, m * size), out.subarray(i, i + m), ctx);
    }
    return out;
  }

  readRowsFloat32(name: string, rows: readonly number[]): Float32Array {
    const info = this.info(name);
    const ctx = { file: info.sourceFile, tensor: name };
    if (info.shape.length === 0) throw new EngineError('shape', 'cannot read rows of a scalar tensor', ctx);
    const nRows = info.shape[0];
    const rowElems = numElements(info.shape.slice(1), ctx);
    const rowBytes = rowElems * DTYPE_SIZE[info.dtype];
    assertArrayLength(rows.length * rowElems, `${rows.length} rows of tensor ${name}`, ctx);
    const out = new Float32Array(rows.length * rowElems);
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= nRows) {
        throw new EngineError('argument', `row ${r} out of range [0, ${nRows})`, ctx);
      }
    }
    if (rows.length === 0 || rowElems === 0) return out;
    // positions in `rows`, sorted by row, so adjacent rows are fetched in one read
    const order = Array.from(rows.keys()).sort((a, b) => rows[a] - rows[b]);
    const loc = info.location;
    // File rows that fit the reused piece buffer are read into it and decoded straight into
    // `out` (a CLT's thousands of active decoder rows then allocate nothing per read).
    const piece = loc.kind === 'file' && rowBytes <= DECODE_PIECE.bytes ? decodePiece() : null;
    const maxRunRows = Math.max(
      1,
      Math.floor((piece ? piece.byteLength : MAX_RUN_BYTES) / Math.max(rowBytes, 1)),
    );
    let i = 0;
    while (i < order.length) {
      const first = rows[order[i]];
      let last = first;
      let j = i + 1;
      while (j < order.length) {
        const r = rows[order[j]];
        if (r === last) j++;
        else if (r === last + 1 && r - first < maxRunRows) {
          last = r;
          j++;
        } else break;
      }
      const runBytes = (last - first + 1) * rowBytes;
      if (piece && loc.kind === 'file') {
        this.reader(loc.file).readInto(piece, 0, runBytes, loc.byteOffset + first * rowBytes, ctx);
        for (let k = i; k < j; k++) {
          const at = (rows[order[k]] - first) * rowBytes;
          const o = order[k] * rowElems;
          decodeToFloat32(info.dtype, piece.subarray(at, at + rowBytes), out.subarray(o, o + rowElems), ctx);
        }
      } else {
        const decoded = decodeToFloat32(
          info.dtype,
          this.readRawRange(name, first * rowBytes, runBytes),
          undefined,
          ctx,
        );
        for (let k = i; k < j; k++) {
          const src = (rows[order[k]] - first) * rowElems;
          out.set(decoded.subarray(src, src + rowElems), order[k] * rowElems);
        }
      }
      i = j;
    }
    return out;
  }

  close(): void {
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
  }
}
