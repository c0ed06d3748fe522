/**
 * Attribution targets as JSON (the CLI's `--targets FILE`, the API's and jobs' `targets`):
 *
 *   [{"label": "Austin vs Dallas", "weights": {" Austin": 1, " Dallas": -1}},
 *    {"token": " Austin"}, {"token": 1234},
 *    {"label": "d", "vector": "dir.npy"},          // a file: .npy or .safetensors (one tensor)
 *    {"label": "e", "vector": [0.1, -0.2, …]}]     // inline: d_model numbers
 *
 * each optionally with "weight" (the influence weight, target-spec.ts). Checked strictly here
 * (unknown keys, types); the model-dependent checks (one token, d_model) are resolveTargetSpecs'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openNpy } from '../checkpoint/npz.ts';
import { openSafetensors } from '../checkpoint/safetensors.ts';
import type { TensorStore } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import { type AttributionTargetSpec, MAX_TARGET_TERMS, MAX_TARGETS } from './target-spec.ts';

/** A targets file is small: labels, tokens and file names (vectors may be inline). */
export const MAX_TARGETS_FILE_BYTES = 64 * 2 ** 20;
/** Longest inline vector or vector file (d_model of any model this app opens). */
export const MAX_VECTOR_LENGTH = 65536;

/** JSON form of a target: a vector is numbers inline, or (files only) a path. */
export type TargetSpecJson =
  | { token: string | number; weight?: number }
  | { label: string; weights: Record<string, number>; weight?: number }
  | { label: string; vector: number[] | string; weight?: number };

/** The same with vectors inline (what a trace stores). */
export type InlineTargetSpecJson =
  | Exclude<TargetSpecJson, { vector: number[] | string }>
  | {
      label: string;
      vector: number[];
      weight?: number;
    };

const KEYS: Record<string, readonly string[]> = {
  token: ['token', 'weight'],
  weights: ['label', 'weights', 'weight'],
  vector: ['label', 'vector', 'weight'],
};

export interface ParseTargetsOptions {
  /** Loads a vector named by a path (the CLI); absent: only inline vectors. */
  loadVector?: (file: string, index: number) => Float32Array;
  /** Named in every error (the targets file). */
  file?: string;
  /** The field errors name (default "targets"). */
  field?: string;
  /** Longest inline vector (the API bounds it by the model's d_model). */
  maxVectorLength?: number;
}

/** Checks JSON targets and converts them to engine specs (vectors as Float32Array). */
export function parseTargetSpecs(value: unknown, opts: ParseTargetsOptions = {}): AttributionTargetSpec[] {
  const field = opts.field ?? 'targets';
  const ctx = (k?: number) => ({ file: opts.file, field: k === undefined ? field : `${field}[${k}]` });
  if (!Array.isArray(value) || value.length === 0)
    throw new EngineError('argument', 'targets must be a non-empty JSON list', ctx());
  if (value.length > MAX_TARGETS)
    throw new EngineError('argument', `at most ${MAX_TARGETS} targets, got ${value.length}`, ctx());
  const maxLen = opts.maxVectorLength ?? MAX_VECTOR_LENGTH;
  return value.map((raw, k): AttributionTargetSpec => {
    const bad = (message: string): never => {
      const o = raw as { label?: unknown; token?: unknown } | null;
      const name =
        o && typeof o === 'object' && typeof o.label === 'string'
          ? ` (${JSON.stringify(o.label)})`
          : o && typeof o === 'object' && (typeof o.token === 'string' || typeof o.token === 'number')
            ? ` (token ${JSON.stringify(o.token)})`
            : '';
      throw new EngineError('argument', `target ${k}${name}: ${message}`, ctx(k));
    };
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      return bad('must be an object with "token", "weights" or "vector"');
    const o = raw as Record<string, unknown>;
    const kinds = Object.keys(KEYS).filter((key) => key in o);
    if (kinds.length !== 1) return bad('needs exactly one of "token", "weights" or "vector"');
    const kind = kinds[0];
    const extra = Object.keys(o).filter((key) => !KEYS[kind].includes(key));
    if (extra.length) return bad(`unknown field ${JSON.stringify(extra[0])}`);
    let weight: number | undefined;
    if ('weight' in o) {
      if (typeof o.weight !== 'number' || !Number.isFinite(o.weight) || o.weight < 0)
        return bad('"weight" must be a finite number ≥ 0');
      weight = o.weight;
    }
    const withWeight = <T extends object>(t: T) => (weight === undefined ? t : { ...t, weight });
    if (kind === 'token') {
      const t = o.token;
      if (!(typeof t === 'string' && t !== '') && !(typeof t === 'number' && Number.isInteger(t) && t >= 0))
        return bad('"token" must be a token string or a token id');
      return withWeight({ token: t as string | number });
    }
    if (typeof o.label !== 'string' || o.label.trim() === '') return bad('needs a non-empty "label"');
    if (o.label.length > 200) return bad('"label" is longer than 200 characters');
    const label = o.label;
    if (kind === 'weights') {
      const w = o.weights;
      if (typeof w !== 'object' || w === null || Array.isArray(w))
        return bad('"weights" must be an object {"token": coefficient}');
      const entries = Object.entries(w);
      if (entries.length === 0) return bad('"weights" is empty');
      if (entries.length > MAX_TARGET_TERMS) return bad(`"weights" has more than ${MAX_TARGET_TERMS} tokens`);
      for (const [tok, c] of entries) {
        if (tok === '') return bad('"weights" has an empty token');
        if (typeof c !== 'number' || !Number.isFinite(c))
          return bad(`the coefficient of ${JSON.stringify(tok)} must be a finite number`);
      }
      return withWeight({ label, weights: { ...(w as Record<string, number>) } });
    }
    const v = o.vector;
    if (typeof v === 'string') {
      if (!opts.loadVector) return bad('"vector" must be a list of numbers');
      return withWeight({ label, vector: opts.loadVector(v, k) });
    }
    if (!Array.isArray(v) || v.length === 0) return bad('"vector" must be a non-empty list of numbers');
    if (v.length > maxLen) return bad(`"vector" has ${v.length} numbers, at most ${maxLen}`);
    if (!v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      return bad('"vector" must hold finite numbers only');
    return withWeight({ label, vector: Float32Array.from(v as number[]) });
  });
}

/** The one tensor of a .npy or .safetensors file, as a vector (shape [n] or [1, n]). */
export function readVectorFile(file: string, context: { index: number; targetsFile?: string }): Float32Array {
  const where = `target ${context.index}: vector file ${file}`;
  const fail = (message: string): never => {
    throw new EngineError('argument', `${where} ${message}`, {
      file: context.targetsFile,
      field: `targets[${context.index}]`,
    });
  };
  const ext = path.extname(file).toLowerCase();
  if (ext !== '.npy' && ext !== '.safetensors') fail('must be .npy or .safetensors');
  if (!fs.existsSync(file)) fail('does not exist');
  let store: TensorStore | undefined;
  try {
    store = ext === '.npy' ? openNpy(file) : openSafetensors(file);
    const names = store.names();
    if (names.length !== 1) fail(`holds ${names.length} tensors, not one`);
    const info = store.info(names[0]);
    const shape = info.shape;
    const n = shape.length === 1 ? shape[0] : shape.length === 2 && shape[0] === 1 ? shape[1] : -1;
    if (n < 0) fail(`has shape [${shape.join(', ')}], not a vector ([n] or [1, n])`);
    if (n > MAX_VECTOR_LENGTH) fail(`has ${n} entries, at most ${MAX_VECTOR_LENGTH}`);
    return store.readFloat32(names[0]);
  } catch (e) {
    if (e instanceof EngineError && e.field === `targets[${context.index}]`) throw e;
    return fail(`could not be read: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    store?.close();
  }
}

/** Reads a targets file (JSON list); vector paths are relative to the file's folder. */
export function readTargetsFile(file: string): AttributionTargetSpec[] {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_TARGETS_FILE_BYTES) throw new Error(`larger than ${MAX_TARGETS_FILE_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new EngineError('io', `the targets file cannot be read: ${e instanceof Error ? e.message : e}`, {
      file,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new EngineError('argument', `the targets file is not JSON: ${e instanceof Error ? e.message : e}`, {
      file,
    });
  }
  const dir = path.dirname(path.resolve(file));
  return parseTargetSpecs(value, {
    file,
    loadVector: (p, index) => readVectorFile(path.resolve(dir, p), { index, targetsFile: file }),
  });
}

/** Engine specs back to JSON (vectors inline), e.g. to store with a trace. */
export function targetSpecsToJson(specs: readonly AttributionTargetSpec[]): InlineTargetSpecJson[] {
  return specs.map((s) => {
    const w = s.weight === undefined ? {} : { weight: s.weight };
    if ('token' in s) return { token: s.token, ...w };
    if ('weights' in s) return { label: s.label, weights: { ...s.weights }, ...w };
    return { label: s.label, vector: Array.from(s.vector), ...w };
  });
}
