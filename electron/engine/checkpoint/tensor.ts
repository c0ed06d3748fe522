import type { EngineError } from '../errors.ts';

/** safetensors dtype names; npy descrs are mapped onto these. */
export type DType =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'I64'
  | 'U64'
  | 'F64';

/**
 * Where a tensor's bytes are. `file` locations let the ONNX compiler reference weights in
 * place (external data) instead of copying them; `memory` is for data that had to be
 * decoded first (a deflated npz member).
 */
export type TensorLocation =
  | { kind: 'file'; file: string; byteOffset: number }
  | { kind: 'memory'; data: Uint8Array };

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
  location: TensorLocation;
  /** The file the tensor was declared in (for error messages), also for memory tensors. */
  sourceFile: string;
}

/** A read-only set of named tensors: one safetensors file, a sharded checkpoint, an npz. */
export interface TensorStore {
  readonly description: string;
  names(): string[];
  has(name: string): boolean;
  /** Throws EngineError('missing') naming the tensor and the store. */
  info(name: string): TensorInfo;
  /** The raw little-endian bytes, copied (so the view is aligned for its dtype). */
  readRaw(name: string): Uint8Array;
  /** `byteLength` bytes of the tensor's data from byte `byteStart` (a streamed chunk), copied. */
  readRawRange(name: string, byteStart: number, byteLength: number): Uint8Array;
  /** Elements [start, start + out.length) (flat, row-major) decoded into `out`, e.g. a chunk of rows. */
  readFloat32Range(name: string, start: number, out: Float32Array): Float32Array;
  /** Decoded to float32 (float and integer dtypes); into `out` when given (its length checked). */
  readFloat32(name: string, out?: Float32Array): Float32Array;
  /**
   * Rows `rows` along dimension 0, decoded to float32, reading only those rows' bytes
   * (a CLT decoder is far too large to load whole). Result is [rows.length, ...shape[1:]].
   */
  readRowsFloat32(name: string, rows: readonly number[]): Float32Array;
  close(): void;
}

export type { EngineError };
