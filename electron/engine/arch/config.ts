/**
 * The normalized model configuration every architecture family parses its Hugging Face
 * config.json into, and strict field readers that name the file and field on failure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.ts';

export type NormKind = 'rms' | 'layer';
export type MlpActivation = 'gelu_tanh' | 'silu' | 'gelu_new';

export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

export interface RopeConfig {
  theta: number;
  llama3?: Llama3RopeScaling;
}

export interface ModelConfig {
  family: string;
  modelType: string;
  hiddenSize: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  normKind: NormKind;
  normEps: number;
  /** Gemma's RMSNorm multiplies by (1 + w). */
  normGainOffset: 0 | 1;
  mlpActivation: MlpActivation;
  rope?: RopeConfig;
  /** Multiplier of q·kᵀ (1/√head_dim, or 1/√query_pre_attn_scalar for Gemma-2). */
  attentionScale: number;
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** Per layer: the sliding window size, or undefined for full attention. */
  slidingWindows: (number | undefined)[];
  tiedEmbeddings: boolean;
  /** Gemma multiplies embeddings by √hidden. */
  embedScale?: number;
  qkNorm: boolean;
  /** Checkpoint dtype as the config states it (informational). */
  torchDtype?: string;
  bosTokenId?: number;
}

/** Reads raw config.json fields, failing with the file and field named. */
export class ConfigReader {
  constructor(
    readonly raw: Record<string, unknown>,
    readonly file: string,
  ) {}

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  number(field: string, fallback?: number): number {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new EngineError('missing', `config.json lacks required field "${field}"`, {
        file: this.file,
        field,
      });
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new EngineError('config', `config field "${field}" must be a number, got ${JSON.stringify(v)}`, {
        file: this.file,
        field,
      });
    }
    return v;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.number(field, fallback);
    if (!Number.isInteger(v) || v <= 0) {
      throw new EngineError('config', `config field "${field}" must be a positive integer, got ${v}`, {
        file: this.file,
        field,
      });
    }
    return v;
  }

  optionalNumber(field: string): number | undefined {
    return this.has(field) ? this.number(field) : undefined;
  }

  string(field: string, fallback?: string): string {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new EngineError('missing', `config.json lacks required field "${field}"`, {
        file: this.file,
        field,
      });
    }
    if (typeof v !== 'string') {
      throw new EngineError('config', `config field "${field}" must be a string`, { file: this.file, field });
    }
    return v;
  }

  boolean(field: string, fallback: boolean): boolean {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      throw new EngineError('config', `config field "${field}" must be true or false`, {
        file: this.file,
        field,
      });
    }
    return v;
  }

  object(field: string): ConfigReader | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new EngineError('config', `config field "${field}" must be an object`, {
        file: this.file,
        field,
      });
    }
    return new ConfigReader(v as Record<string, unknown>, this.file);
  }

  /** The checkpoint dtype under either spelling (`torch_dtype` or the newer `dtype`). */
  dtype(): string | undefined {
    const v = this.raw['torch_dtype'] ?? this.raw['dtype'];
    return typeof v === 'string' ? v : undefined;
  }

  /**
   * RoPE settings under either spelling: `rope_theta` + `rope_scaling`, or the newer
   * `rope_parameters` ({rope_type, rope_theta, factor, ...}).
   */
  rope(defaultTheta: number): RopeConfig {
    const params = this.object('rope_parameters');
    const scaling = params ?? this.object('rope_scaling');
    const theta = params?.has('rope_theta')
      ? params.number('rope_theta')
      : this.number('rope_theta', defaultTheta);
    if (!scaling) return { theta };
    const type = scaling.has('rope_type') ? scaling.string('rope_type') : scaling.string('type', 'default');
    if (type === 'default') return { theta };
    if (type !== 'llama3') {
      throw new EngineError(
        'unsupported',
        `rope scaling type "${type}" is not supported (default, llama3 are)`,
        {
          file: this.file,
          field: params ? 'rope_parameters.rope_type' : 'rope_scaling.rope_type',
        },
      );
    }
    return {
      theta,
      llama3: {
        factor: scaling.number('factor'),
        lowFreqFactor: scaling.number('low_freq_factor'),
        highFreqFactor: scaling.number('high_freq_factor'),
        originalMaxPositions: scaling.positiveInt('original_max_position_embeddings'),
      },
    };
  }
}

/** The most a config file (config.json, tokenizer_config.json, config.yaml) may hold. */
export const MAX_CONFIG_BYTES = 4 * 2 ** 20;

/**
 * Reads a small regular file whole, without blocking on what is not one: it is opened
 * non-blocking (a FIFO with no writer would block the open), fstat-ed, refused unless it is a
 * regular file of at most `maxBytes` (a device such as /dev/zero, a FIFO or a folder never gets
 * read), and read no further than the size fstat gave. `missing` when it cannot be opened,
 * `io` when it is not a regular file, `limit` when it is too large.
 */
export function readSmallRegularFile(file: string, maxBytes: number, what = path.basename(file)): string {
  return readSmallRegularBytes(file, maxBytes, what).toString('utf8');
}

/** readSmallRegularFile's bytes, undecoded (a gzip'd index, say). */
export function readSmallRegularBytes(file: string, maxBytes: number, what = path.basename(file)): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new EngineError('missing', `cannot read ${what}: ${(e as Error).message}`, { file });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw new EngineError('io', `${what} is not a regular file (a device, FIFO, socket or folder)`, {
        file,
      });
    }
    if (st.size > maxBytes) {
      throw new EngineError('io', `${what} is ${st.size} bytes; at most ${maxBytes} are read`, { file });
    }
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } catch (e) {
    if (e instanceof EngineError) throw e;
    throw new EngineError('io', `cannot read ${what}: ${(e as Error).message}`, { file });
  } finally {
    fs.closeSync(fd);
  }
}

export function readConfigJson(dir: string): ConfigReader {
  const file = path.join(dir, 'config.json');
  const text = readSmallRegularFile(file, MAX_CONFIG_BYTES, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new EngineError('header', `config.json is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new EngineError('header', 'config.json must hold a JSON object', { file });
  }
  return new ConfigReader(raw as Record<string, unknown>, file);
}
