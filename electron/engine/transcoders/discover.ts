/**
 * Which files hold which layer: from config.yaml's `transcoders:` list, or by looking in the
 * folder (`layer_{i}.safetensors`, a GemmaScope `layer_{L}/…/params.npz` tree, or a CLT's
 * `W_enc_{l}.safetensors` / `W_dec_{l}.safetensors`). Layers must be 0..L−1 without gaps.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.ts';
import { missingListedFile, type TranscoderConfig, type TranscoderEntry } from './config.ts';

export type PltFileFormat = 'safetensors' | 'npz';

export interface PltLayerFile {
  layer: number;
  file: string;
  format: PltFileFormat;
}

export interface CltLayerFiles {
  layer: number;
  encoderFile: string;
  decoderFile: string;
}

/** Expected GemmaScope location of layer L, for messages. */
export function gemmaScopePattern(dir: string, layer: number): string {
  return path.join(dir, `layer_${layer}`, 'width_*', 'average_l0_*', 'params.npz');
}

/** The last `layer_{N}` in a path (`layer_3/width_16k/…`, `layer_3.safetensors`). */
export function layerFromPath(p: string): number | undefined {
  let found: number | undefined;
  for (const m of p.matchAll(/(?:^|[/\\_.-])layer_(\d+)(?=$|[/\\._-])/g)) found = Number(m[1]);
  return found;
}

function formatOf(file: string): PltFileFormat | undefined {
  if (file.endsWith('.safetensors')) return 'safetensors';
  if (file.endsWith('.npz')) return 'npz';
  return undefined;
}

function listedPltFiles(cfg: TranscoderConfig, entries: readonly TranscoderEntry[]): PltLayerFile[] {
  const out: PltLayerFile[] = [];
  const byLayer = new Map<number, TranscoderEntry>();
  for (const e of entries) {
    const field = `transcoders[${e.index}]`;
    const layer = e.layer ?? layerFromPath(e.written) ?? e.index;
    const format = formatOf(e.localPath);
    if (!format) {
      throw new EngineError(
        'unsupported',
        `transcoder file ${e.written} is neither .safetensors nor .npz (${cfg.file})`,
        { file: e.localPath, field },
      );
    }
    const prev = byLayer.get(layer);
    if (prev) {
      throw new EngineError(
        'config',
        `two transcoders for layer ${layer}: ${prev.written} and ${e.written}`,
        { file: cfg.file, field },
      );
    }
    byLayer.set(layer, e);
    if (!isFile(e.localPath)) throw missingListedFile(e, cfg.file);
    out.push({ layer, file: e.localPath, format });
  }
  return out;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function readDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new EngineError('io', `cannot list transcoder folder: ${(e as Error).message}`, { file: dir });
  }
}

/** How deep and how wide the npz search may go before it gives up (a wrong folder, e.g. /usr). */
export const WALK_MAX_DEPTH = 6;
export const WALK_MAX_ENTRIES = 20_000;

/**
 * `.npz` files under `dir` (depth ≤ WALK_MAX_DEPTH) whose path names a `layer_{L}`, grouped by
 * L. More than WALK_MAX_ENTRIES entries seen is an `io` error naming the folder, so a wrong
 * folder fails at once instead of freezing the caller while the whole tree is listed.
 */
function walkNpz(dir: string): Map<number, string[]> {
  const found = new Map<number, string[]>();
  let seen = 0;
  const visit = (d: string, rel: string, depth: number) => {
    for (const ent of readDir(d)) {
      if (++seen > WALK_MAX_ENTRIES) {
        throw new EngineError(
          'io',
          `the transcoder folder holds more than ${WALK_MAX_ENTRIES} entries within ${WALK_MAX_DEPTH} levels; point it at the folder that holds the transcoder files`,
          { file: dir },
        );
      }
      if (ent.name.startsWith('.') || ent.name === 'node_modules') continue;
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      const full = path.join(d, ent.name);
      if (ent.isDirectory()) {
        if (depth < WALK_MAX_DEPTH) visit(full, r, depth + 1);
      } else if (ent.name.endsWith('.npz')) {
        const layer = layerFromPath(r);
        if (layer === undefined) continue;
        const list = found.get(layer) ?? [];
        list.push(full);
        found.set(layer, list);
      }
    }
  };
  visit(dir, '', 0);
  return found;
}

/** Per-layer files of a PLT set (circuit-tracer safetensors or GemmaScope npz). */
export function discoverPltFiles(dir: string, cfg: TranscoderConfig | null): PltLayerFile[] {
  let files: PltLayerFile[];
  let missingFor: (layer: number) => EngineError;
  if (cfg?.transcoders && cfg.transcoders.length > 0) {
    files = listedPltFiles(cfg, cfg.transcoders);
    const cfgFile = cfg.file;
    missingFor = (l) =>
      new EngineError(
        'missing',
        `config.yaml lists no transcoder for layer ${l}; layers 0..${maxLayer(files)} must all be present`,
        { file: cfgFile, field: 'transcoders' },
      );
  } else {
    files = [];
    for (const ent of readDir(dir)) {
      const m = /^layer_(\d+)\.safetensors$/.exec(ent.name);
      if (m && !ent.isDirectory()) {
        files.push({ layer: Number(m[1]), file: path.join(dir, ent.name), format: 'safetensors' });
      }
    }
    if (files.length > 0) {
      missingFor = (l) =>
        new EngineError('missing', `transcoder file for layer ${l} not found`, {
          file: path.join(dir, `layer_${l}.safetensors`),
        });
    } else {
      for (const [layer, list] of walkNpz(dir)) {
        if (list.length > 1) {
          list.sort();
          throw new EngineError(
            'config',
            `several npz candidates for layer ${layer}: ${list.join(', ')}; list the one to use ` +
              `under transcoders: in ${cfg?.file ?? path.join(dir, 'config.yaml')}`,
            { file: list[0], field: 'transcoders' },
          );
        }
        files.push({ layer, file: list[0], format: 'npz' });
      }
      missingFor = (l) =>
        new EngineError('missing', `GemmaScope params.npz for layer ${l} not found`, {
          file: gemmaScopePattern(dir, l),
        });
    }
  }
  if (files.length === 0) {
    if (!cfg) {
      throw new EngineError(
        'missing',
        `no config.yaml and no GemmaScope layer_{L}/…/params.npz files in ${dir}`,
        { file: path.join(dir, 'config.yaml') },
      );
    }
    throw new EngineError(
      'missing',
      'no transcoder files: expected layer_{i}.safetensors, layer_{L}/…/params.npz or a transcoders: list',
      { file: path.join(dir, 'layer_0.safetensors'), field: 'transcoders' },
    );
  }
  files.sort((a, b) => a.layer - b.layer);
  const n = maxLayer(files) + 1;
  for (let l = 0; l < n; l++) {
    if (files[l]?.layer !== l) throw missingFor(l);
  }
  return files;
}

function maxLayer(files: readonly { layer: number }[]): number {
  return files.reduce((m, f) => Math.max(m, f.layer), -1);
}

/** W_enc_{l} / W_dec_{l} files of a CLT folder (listed ones first, then the folder's). */
export function discoverCltFiles(dir: string, cfg: TranscoderConfig | null): CltLayerFiles[] {
  const enc = new Map<number, string>();
  const dec = new Map<number, string>();
  const re = /^W_(enc|dec)_(\d+)\.safetensors$/;
  for (const e of cfg?.transcoders ?? []) {
    const m = re.exec(path.basename(e.localPath));
    if (!m) {
      throw new EngineError(
        'config',
        `CLT transcoders entries must be W_enc_{l}.safetensors or W_dec_{l}.safetensors, got ${e.written}`,
        { file: cfg?.file, field: `transcoders[${e.index}]` },
      );
    }
    if (!isFile(e.localPath)) throw missingListedFile(e, cfg?.file ?? '');
    (m[1] === 'enc' ? enc : dec).set(Number(m[2]), e.localPath);
  }
  for (const ent of readDir(dir)) {
    const m = re.exec(ent.name);
    if (!m || ent.isDirectory()) continue;
    const map = m[1] === 'enc' ? enc : dec;
    const l = Number(m[2]);
    if (!map.has(l)) map.set(l, path.join(dir, ent.name));
  }
  const n = Math.max(-1, ...enc.keys(), ...dec.keys()) + 1;
  if (n === 0) {
    throw new EngineError('missing', 'cross-layer transcoder folder has no W_enc_{l}.safetensors files', {
      file: path.join(dir, 'W_enc_0.safetensors'),
    });
  }
  const out: CltLayerFiles[] = [];
  for (let l = 0; l < n; l++) {
    const e = enc.get(l);
    const d = dec.get(l);
    if (!e || !d) {
      throw new EngineError('missing', `cross-layer transcoder file for layer ${l} not found (${n} layers)`, {
        file: path.join(dir, `W_${e ? 'dec' : 'enc'}_${l}.safetensors`),
      });
    }
    out.push({ layer: l, encoderFile: e, decoderFile: d });
  }
  return out;
}

/** True when the folder looks like a CLT (has W_enc_0.safetensors). */
export function looksLikeClt(dir: string): boolean {
  return isFile(path.join(dir, 'W_enc_0.safetensors'));
}
