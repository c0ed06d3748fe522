/**
 * Test helpers: tiny npy / zip (npz) writers and builders of small transcoder folders in
 * temp dirs. Values are multiples of 1/8 in [-2, 2] so they are exact in bf16 too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { stringify } from 'yaml';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import type { DType } from '../../../electron/engine/checkpoint/tensor.ts';
import { type EngineError, isEngineError } from '../../../electron/engine/errors.ts';
import { crc32 } from '../../fixtures/tiny-checkpoints.ts';

export function tempDir(prefix = 'tc-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Deterministic values k/8, k in [-16, 16]. */
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) % 33) / 8 - 2;
  }
  return out;
}

/** [rows, cols] → [cols, rows]. */
export function transposed(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}

// ---------------------------------------------------------------- npy / npz

export function npyBytes(data: Float32Array, shape: readonly number[]): Uint8Array {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    head,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

/** A zip of the given members (stored, or deflated when `deflate`). */
export function zipBytes(members: { name: string; data: Uint8Array }[], deflate = false): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const body = deflate ? zlib.deflateRawSync(m.data) : Buffer.from(m.data);
    const crc = crc32(m.data);
    const method = deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(m.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    locals.push(local, name, body);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(members.length, 8);
  eocd.writeUInt16LE(members.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

export function writeNpz(
  file: string,
  arrays: Record<string, { data: Float32Array; shape: number[] }>,
  deflate = false,
): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const members = Object.entries(arrays).map(([name, a]) => ({
    name: `${name}.npy`,
    data: npyBytes(a.data, a.shape),
  }));
  fs.writeFileSync(file, zipBytes(members, deflate));
}

export function writeConfig(dir: string, cfg: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dir, 'config.yaml'), stringify(cfg));
}

// ---------------------------------------------------------------- transcoder folders

/** Canonical parameters of one PLT layer: W_enc [dT, d], W_dec [dT, d]. */
export interface PltParams {
  W_enc: Float32Array;
  W_dec: Float32Array;
  b_enc: Float32Array;
  b_dec: Float32Array;
  threshold?: Float32Array;
  W_skip?: Float32Array;
}

export function pltParams(
  layer: number,
  d: number,
  dT: number,
  opts: { threshold?: boolean; skip?: boolean } = {},
) {
  const p: PltParams = {
    W_enc: values(dT * d, 11 + layer),
    W_dec: values(dT * d, 23 + layer),
    b_enc: values(dT, 37 + layer),
    b_dec: values(d, 41 + layer),
  };
  if (opts.threshold) p.threshold = values(dT, 53 + layer).map((v) => Math.abs(v) / 4);
  if (opts.skip) p.W_skip = values(d * d, 67 + layer);
  return p;
}

export interface PltFolderOptions {
  nLayers?: number;
  d?: number;
  dT?: number;
  threshold?: boolean;
  skip?: boolean;
  transposeEnc?: boolean;
  transposeDec?: boolean;
  config?: Record<string, unknown> | null;
}

/** circuit-tracer layout: config.yaml + layer_{i}.safetensors. Returns canonical params. */
export function writePltFolder(dir: string, o: PltFolderOptions = {}): PltParams[] {
  const L = o.nLayers ?? 2;
  const d = o.d ?? 4;
  const dT = o.dT ?? 6;
  const params: PltParams[] = [];
  for (let l = 0; l < L; l++) {
    const p = pltParams(l, d, dT, o);
    params.push(p);
    const t = [
      o.transposeEnc
        ? { name: 'W_enc', dtype: 'F32' as DType, shape: [d, dT], data: transposed(p.W_enc, dT, d) }
        : { name: 'W_enc', dtype: 'F32' as DType, shape: [dT, d], data: p.W_enc },
      o.transposeDec
        ? { name: 'W_dec', dtype: 'F32' as DType, shape: [d, dT], data: transposed(p.W_dec, dT, d) }
        : { name: 'W_dec', dtype: 'F32' as DType, shape: [dT, d], data: p.W_dec },
      { name: 'b_enc', dtype: 'F32' as DType, shape: [dT], data: p.b_enc },
      { name: 'b_dec', dtype: 'F32' as DType, shape: [d], data: p.b_dec },
    ];
    if (p.threshold)
      t.push({ name: 'activation_function.threshold', dtype: 'F32', shape: [dT], data: p.threshold });
    if (p.W_skip) t.push({ name: 'W_skip', dtype: 'F32', shape: [d, d], data: p.W_skip });
    writeSafetensors(path.join(dir, `layer_${l}.safetensors`), t);
  }
  if (o.config !== null) {
    writeConfig(dir, {
      model_name: 'test/tiny',
      model_kind: 'transcoder_set',
      feature_input_hook: 'mlp.hook_in',
      feature_output_hook: 'mlp.hook_out',
      ...o.config,
    });
  }
  return params;
}

/** GemmaScope npz tree layer_{L}/width_16k/average_l0_{N}/params.npz (no config.yaml). */
export function writeGemmaScopeFolder(
  dir: string,
  o: { nLayers?: number; d?: number; dT?: number; deflate?: boolean } = {},
): { params: PltParams[]; rel: string[] } {
  const L = o.nLayers ?? 2;
  const d = o.d ?? 4;
  const dT = o.dT ?? 6;
  const params: PltParams[] = [];
  const rel: string[] = [];
  for (let l = 0; l < L; l++) {
    const p = pltParams(l, d, dT, { threshold: true });
    params.push(p);
    const r = `layer_${l}/width_16k/average_l0_${50 + l}/params.npz`;
    rel.push(r);
    writeNpz(
      path.join(dir, r),
      {
        W_enc: { data: transposed(p.W_enc, dT, d), shape: [d, dT] },
        W_dec: { data: p.W_dec, shape: [dT, d] },
        b_enc: { data: p.b_enc, shape: [dT] },
        b_dec: { data: p.b_dec, shape: [d] },
        threshold: { data: p.threshold!, shape: [dT] },
      },
      o.deflate,
    );
  }
  return { params, rel };
}

export interface CltParams {
  W_enc: Float32Array; // [dT, d]
  b_enc: Float32Array;
  b_dec: Float32Array;
  threshold?: Float32Array;
  W_dec: Float32Array; // [dT, L−l, d]
}

/** CLT folder: config.yaml + W_enc_{l}.safetensors + W_dec_{l}.safetensors. */
export function writeCltFolder(
  dir: string,
  o: {
    nLayers?: number;
    d?: number;
    dT?: number;
    dtype?: DType;
    threshold?: boolean;
    slots?: (l: number, L: number) => number;
    config?: Record<string, unknown> | null;
  } = {},
): CltParams[] {
  const L = o.nLayers ?? 3;
  const d = o.d ?? 4;
  const dT = o.dT ?? 5;
  const dtype = o.dtype ?? 'BF16';
  const out: CltParams[] = [];
  for (let l = 0; l < L; l++) {
    const slots = o.slots ? o.slots(l, L) : L - l;
    const p: CltParams = {
      W_enc: values(dT * d, 101 + l),
      b_enc: values(dT, 131 + l),
      b_dec: values(d, 151 + l),
      W_dec: values(dT * slots * d, 171 + l),
    };
    if (o.threshold !== false) p.threshold = values(dT, 191 + l).map((v) => Math.abs(v) / 8);
    out.push(p);
    const enc = [
      { name: `W_enc_${l}`, dtype, shape: [dT, d], data: p.W_enc },
      { name: `b_enc_${l}`, dtype, shape: [dT], data: p.b_enc },
      { name: `b_dec_${l}`, dtype, shape: [d], data: p.b_dec },
    ];
    if (p.threshold) enc.push({ name: `threshold_${l}`, dtype, shape: [dT], data: p.threshold });
    writeSafetensors(path.join(dir, `W_enc_${l}.safetensors`), enc);
    writeSafetensors(path.join(dir, `W_dec_${l}.safetensors`), [
      { name: `W_dec_${l}`, dtype, shape: [dT, slots, d], data: p.W_dec },
    ]);
  }
  if (o.config !== null) {
    writeConfig(dir, {
      model_name: 'google/gemma-2-2b',
      model_kind: 'cross_layer_transcoder',
      feature_input_hook: 'hook_resid_mid',
      feature_output_hook: 'hook_mlp_out',
      ...o.config,
    });
  }
  return out;
}

/** Runs `fn`, returns the EngineError it throws (fails the test when it does not throw one). */
export function engineErrorOf(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (e) {
    if (isEngineError(e)) return e;
    throw e;
  }
  throw new Error('expected an EngineError, nothing was thrown');
}
