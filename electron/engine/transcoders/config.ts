/**
 * config.yaml of a circuit-tracer transcoder folder:
 *
 *   model_name: google/gemma-2-2b
 *   model_kind: transcoder_set | cross_layer_transcoder     # absent in older configs
 *   feature_input_hook: ln2.hook_normalized
 *   feature_output_hook: hook_mlp_out
 *   transcoders:                                           # optional
 *     - hf://google/gemma-scope-2b-pt-transcoders/layer_0/width_16k/average_l0_76/params.npz
 *     - { id: ..., layer: 1, filepath: layer_1.safetensors }
 *   activation: relu | topk | jumprelu                     # optional
 *   k: 64                                                  # with topk
 *
 * Paths in `transcoders:` are relative to the folder; `hf://owner/repo/` is stripped to the
 * same relative path (the workbench never downloads).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MAX_CONFIG_BYTES, readSmallRegularFile } from '../arch/config.ts';
import { EngineError } from '../errors.ts';

export const CONFIG_FILE_NAME = 'config.yaml';

export type ModelKind = 'transcoder_set' | 'cross_layer_transcoder';
export type ActivationName = 'relu' | 'topk' | 'jumprelu';

export interface TranscoderEntry {
  /** Position in the `transcoders:` list. */
  index: number;
  /** `layer:` of an object entry, else undefined (inferred from the path by the caller). */
  layer?: number;
  /** The path as written in config.yaml. */
  written: string;
  /** Absolute local path. */
  localPath: string;
  /** True when `written` was an hf:// URI, stripped to a local path. */
  fromHf: boolean;
}

export interface TranscoderConfig {
  /** Absolute path of config.yaml. */
  file: string;
  modelName?: string;
  modelKind?: ModelKind;
  featureInputHook?: string;
  featureOutputHook?: string;
  transcoders?: TranscoderEntry[];
  activation?: ActivationName;
  k?: number;
}

const MODEL_KINDS: readonly ModelKind[] = ['transcoder_set', 'cross_layer_transcoder'];
const ACTIVATIONS: readonly ActivationName[] = ['relu', 'topk', 'jumprelu'];

/** `blocks.{l}.mlp.hook_in` / `blocks.3.mlp.hook_in` → `mlp.hook_in`. */
export function stripBlockPrefix(hook: string): string {
  return hook.replace(/^blocks\.(\{l\}|\{layer\}|\d+)\./, '');
}

const HF_PREFIX = /^hf:\/\/[^/]+\/[^/]+\//;

/** `hf://owner/repo[@rev]/a/b` → `a/b`; other strings unchanged. */
export function stripHfPrefix(p: string): { rel: string; fromHf: boolean } {
  if (p.startsWith('hf://')) {
    const m = HF_PREFIX.exec(p);
    return { rel: m ? p.slice(m[0].length) : p.slice('hf://'.length), fromHf: true };
  }
  return { rel: p, fromHf: false };
}

/** Read and check `dir/config.yaml`; null when the folder has none. */
export function readTranscoderConfig(dir: string): TranscoderConfig | null {
  const file = path.join(dir, CONFIG_FILE_NAME);
  if (!fs.existsSync(file)) return null;
  // a FIFO, device or oversized file is refused before anything is read
  const text = readSmallRegularFile(file, MAX_CONFIG_BYTES, 'transcoder config.yaml');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new EngineError('config', `config.yaml is not valid YAML: ${(e as Error).message}`, { file });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new EngineError('config', 'config.yaml must be a mapping of fields', { file });
  }
  const raw = doc as Record<string, unknown>;
  const cfg: TranscoderConfig = { file };

  const str = (field: string): string | undefined => {
    const v = raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      throw new EngineError('config', `${field} must be a non-empty string`, { file, field });
    }
    return v.trim();
  };

  cfg.modelName = str('model_name');
  const kind = str('model_kind');
  if (kind !== undefined) {
    if (!(MODEL_KINDS as readonly string[]).includes(kind)) {
      throw new EngineError(
        'unsupported',
        `unknown model_kind ${JSON.stringify(kind)} (expected ${MODEL_KINDS.join(' or ')})`,
        { file, field: 'model_kind' },
      );
    }
    cfg.modelKind = kind as ModelKind;
  }
  const inHook = str('feature_input_hook');
  const outHook = str('feature_output_hook');
  if (inHook !== undefined) cfg.featureInputHook = stripBlockPrefix(inHook);
  if (outHook !== undefined) cfg.featureOutputHook = stripBlockPrefix(outHook);

  const act = str('activation');
  if (act !== undefined) {
    const a = act.toLowerCase();
    if (!(ACTIVATIONS as readonly string[]).includes(a)) {
      throw new EngineError(
        'unsupported',
        `unknown activation ${JSON.stringify(act)} (expected ${ACTIVATIONS.join(', ')})`,
        { file, field: 'activation' },
      );
    }
    cfg.activation = a as ActivationName;
  }
  if (raw['k'] !== undefined && raw['k'] !== null) {
    const k = raw['k'];
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) {
      throw new EngineError('config', `k must be a positive integer, got ${JSON.stringify(k)}`, {
        file,
        field: 'k',
      });
    }
    cfg.k = k;
  }

  const list = raw['transcoders'];
  if (list !== undefined && list !== null) {
    if (!Array.isArray(list)) {
      throw new EngineError('config', 'transcoders must be a list of paths', { file, field: 'transcoders' });
    }
    cfg.transcoders = list.map((item, index) => parseEntry(item, index, dir, file));
  }
  return cfg;
}

function parseEntry(item: unknown, index: number, dir: string, file: string): TranscoderEntry {
  const field = `transcoders[${index}]`;
  let written: unknown = item;
  let layer: number | undefined;
  if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
    const o = item as Record<string, unknown>;
    written = o['filepath'] ?? o['path'] ?? o['file'];
    if (o['layer'] !== undefined) {
      const l = o['layer'];
      if (typeof l !== 'number' || !Number.isInteger(l) || l < 0) {
        throw new EngineError('config', `layer must be a non-negative integer, got ${JSON.stringify(l)}`, {
          file,
          field: `${field}.layer`,
        });
      }
      layer = l;
    }
  }
  if (typeof written !== 'string' || written.trim() === '') {
    throw new EngineError('config', 'each transcoders entry must be a path or {layer, filepath}', {
      file,
      field,
    });
  }
  const w = written.trim();
  const { rel, fromHf } = stripHfPrefix(w);
  const localPath = path.resolve(dir, rel);
  return { index, layer, written: w, localPath, fromHf };
}

/** The `missing` error for a listed file that is not on disk, explaining an hf:// rewrite. */
export function missingListedFile(entry: TranscoderEntry, configFile: string): EngineError {
  const how = entry.fromHf
    ? `config.yaml lists ${entry.written}; the workbench does not download, so it looked for it at ` +
      `${entry.localPath} (the hf://owner/repo/ prefix stripped, relative to the folder): download it there`
    : `config.yaml lists ${entry.written}, which is not present`;
  return new EngineError('missing', `transcoder file not found: ${how} (${configFile})`, {
    file: entry.localPath,
    field: `transcoders[${entry.index}]`,
  });
}
