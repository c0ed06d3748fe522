/**
 * safetensors reader: only the header is read at open (and strictly validated); tensor
 * bytes are read on demand with positional reads, never the whole file.
 */
import { EngineError } from '../errors.ts';
import { DTYPE_SIZE, isDType, numElements } from './dtype.ts';
import { FileReader } from './file-reader.ts';
import { BaseTensorStore } from './store-base.ts';
import type { DType, TensorInfo } from './tensor.ts';

/** Headers larger than this are rejected (as the reference implementation does). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Most tensor entries one safetensors file may declare. Real files hold a few thousand at most
 * (a whole MoE checkpoint tens of thousands, across shards); a header of 1.4M tiny entries
 * took 21 s and 1.6 GB to parse. Checked before JSON.parse by counting `{` bytes (every entry
 * is an object, so that count bounds the number of entries).
 */
export const MAX_HEADER_ENTRIES = 100_000;

export interface ParsedSafetensorsHeader {
  /** Tensors in header order, offsets relative to the data buffer. */
  tensors: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[];
  metadata?: Record<string, string>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parse and validate a safetensors JSON header against a data buffer of `bufferLength`
 * bytes. Every failure is an EngineError naming `file` (and the tensor/field).
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  bufferLength: number,
  file: string,
): ParsedSafetensorsHeader {
  let braces = 0;
  for (let i = 0; i < headerBytes.length; i++) if (headerBytes[i] === 0x7b) braces++;
  if (braces > MAX_HEADER_ENTRIES + 2) {
    throw new EngineError(
      'header',
      `safetensors header holds ${braces} JSON objects, more than the ${MAX_HEADER_ENTRIES} tensor entries allowed`,
      { file },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new EngineError('header', 'safetensors header is not valid UTF-8', { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EngineError('header', `safetensors header is not valid JSON: ${(e as Error).message}`, {
      file,
    });
  }
  if (!isPlainObject(json)) {
    throw new EngineError('header', 'safetensors header must be a JSON object', { file });
  }
  let metadata: Record<string, string> | undefined;
  const tensors: ParsedSafetensorsHeader['tensors'] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(raw)) {
        throw new EngineError('header', '__metadata__ must be an object of strings', {
          file,
          field: '__metadata__',
        });
      }
      metadata = {};
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw new EngineError('header', '__metadata__ values must be strings', {
            file,
            field: `__metadata__.${k}`,
          });
        }
        Object.defineProperty(metadata, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      continue;
    }
    const ctx = { file, tensor: name };
    if (!isPlainObject(raw)) throw new EngineError('header', 'tensor entry must be an object', ctx);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isDType(dtype)) {
      throw new EngineError('dtype', `unknown dtype ${JSON.stringify(dtype) ?? String(dtype)}`, {
        ...ctx,
        field: 'dtype',
      });
    }
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)
    ) {
      throw new EngineError('header', `shape must be an array of non-negative integers`, {
        ...ctx,
        field: 'shape',
      });
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isInteger(o) && o >= 0)
    ) {
      throw new EngineError('header', 'data_offsets must be two non-negative integers', {
        ...ctx,
        field: 'data_offsets',
      });
    }
    const [begin, end] = offsets as number[];
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin > end) {
      throw new EngineError('bounds', `invalid data_offsets [${begin}, ${end}]`, {
        ...ctx,
        field: 'data_offsets',
      });
    }
    const n = numElements(shape as number[], ctx);
    const expected = n * DTYPE_SIZE[dtype];
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw new EngineError(
        'shape',
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape [${shape.join(', ')}] of ${dtype} needs ${expected}`,
        ctx,
      );
    }
    tensors.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }
  // contiguous, no overlaps, no holes, ending exactly at the end of the file
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let prev: string | undefined;
  for (const t of sorted) {
    const ctx = { file, tensor: t.name, field: 'data_offsets' };
    if (t.begin < expected) {
      throw new EngineError(
        'bounds',
        `data_offsets [${t.begin}, ${t.end}] overlap tensor ${prev} (which ends at ${expected})`,
        ctx,
      );
    }
    if (t.begin > expected) {
      if (t.end > bufferLength) {
        throw new EngineError(
          'bounds',
          `data_offsets [${t.begin}, ${t.end}] lie outside the ${bufferLength}-byte data buffer`,
          ctx,
        );
      }
      throw new EngineError(
        'bounds',
        `hole in the data buffer: bytes [${expected}, ${t.begin}) belong to no tensor (before this tensor)`,
        ctx,
      );
    }
    expected = t.end;
    prev = t.name;
  }
  if (expected > bufferLength) {
    const last = sorted[sorted.length - 1];
    throw new EngineError(
      'truncated',
      `file is truncated: the data buffer has ${bufferLength} bytes, tensors need ${expected}`,
      { file, tensor: last.name },
    );
  }
  if (expected < bufferLength) {
    throw new EngineError(
      'bounds',
      `${bufferLength - expected} trailing bytes after the last tensor${prev ? ` (${prev})` : ''}`,
      { file, tensor: prev },
    );
  }
  return { tensors, metadata };
}

export class SafetensorsFile extends BaseTensorStore {
  readonly description: string;
  /** `__metadata__` of the header, if any. */
  readonly metadata: Record<string, string> | undefined;
  /** Byte offset of the data buffer in the file (8 + header length). */
  readonly dataOffset: number;

  constructor(
    readonly path: string,
    parsed: ParsedSafetensorsHeader,
    dataOffset: number,
  ) {
    super();
    this.description = `safetensors ${path}`;
    this.metadata = parsed.metadata;
    this.dataOffset = dataOffset;
    for (const t of parsed.tensors) {
      const info: TensorInfo = {
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        byteLength: t.end - t.begin,
        location: { kind: 'file', file: path, byteOffset: dataOffset + t.begin },
        sourceFile: path,
      };
      this.entries.set(t.name, info);
    }
  }

  protected primaryFile(): string {
    return this.path;
  }
}

/** Open a safetensors file, reading and validating only its header. */
export function openSafetensors(path: string): SafetensorsFile {
  const reader = new FileReader(path);
  try {
    const size = reader.size();
    if (size < 8) {
      throw new EngineError('truncated', `file has ${size} bytes, a safetensors file needs at least 8`, {
        file: path,
      });
    }
    const prefix = Buffer.from(reader.read(0, 8, { file: path }));
    const n = prefix.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER_BYTES)) {
      throw new EngineError('header', `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, {
        file: path,
        field: 'header length',
      });
    }
    const headerLength = Number(n);
    if (8 + headerLength > size) {
      throw new EngineError(
        'truncated',
        `header length ${headerLength} goes beyond the end of the ${size}-byte file`,
        { file: path, field: 'header length' },
      );
    }
    const headerBytes = reader.read(8, headerLength, { file: path });
    const parsed = parseSafetensorsHeader(headerBytes, size - 8 - headerLength, path);
    return new SafetensorsFile(path, parsed, 8 + headerLength);
  } finally {
    reader.close();
  }
}
