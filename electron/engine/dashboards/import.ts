/**
 * Import of published feature data into FeatureRecords.
 *
 * Layouts read:
 * 1. circuit-tracer's binary layout (what its frontend `loadFeatureFromBinary` reads from a
 *    transcoder repository's `features/` folder):
 *      index.json.gz = gzip(JSON {"<layer>": {"filename": "layer_N.bin", "offsets": [o_0, …, o_n]}})
 *    feature i of that layer is the byte range [o_i, o_{i+1}) of `filename` (relative to the
 *    index's folder). Each range holds the feature's JSON, gzipped; published files put a
 *    4-byte prefix before the gzip stream, which readers (and we) skip. We read it as a
 *    little-endian uint32 length of the gzip member and accept either that or no prefix.
 * 2. A folder of per-feature JSON files (circuit-tracer's local `features/<scan>/` layout):
 *    `<cantor(layer, index)>.json` (the frontend's file name), or `<layer>_<index>.json`, or any
 *    name when the JSON itself has `layer` and `index` (or `feature`) fields; `.json.gz` too.
 * 3. A JSON Lines file of records (what `circuit dashboards` writes) or one JSON feature file.
 *
 * Feature JSON accepted: the §6 record (`examples_quantiles`, `top_logits`, `bottom_logits`,
 * `act_min`, `act_max`, `activation_frequency`, optional `quantile_values`, `histogram`), with
 * logits as strings or [string, value] pairs; and Neuronpedia's feature export
 * (`activations: [{tokens, values, maxValueTokenIndex}]`, `pos_str`/`pos_values`,
 * `neg_str`/`neg_values`, `frac_nonzero`, `freq_hist_data_bar_values`/`_heights`) — the latter
 * field list is from memory of Neuronpedia's API, not from a published specification.
 *
 * Everything is untrusted: sizes are bounded, strings stay strings (never HTML), and a bad
 * record fails with the file and feature it concerns.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readSmallRegularBytes } from '../arch/config.ts';
import { EngineError } from '../errors.ts';
import { cantorPair, cantorUnpair } from './cantor.ts';
import { readCorpus } from './corpus.ts';
import {
  type ActivationHistogram,
  type ExampleGroup,
  type FeatureExample,
  type FeatureRecord,
  type QuantileValue,
  TOP_ACTIVATIONS,
} from './types.ts';

export const IMPORT_LIMITS = {
  /** Decompressed bytes of one feature. */
  featureBytes: 64 << 20,
  indexBytes: 256 << 20,
  groups: 64,
  examplesPerGroup: 2000,
  tokensPerExample: 8192,
  logits: 1000,
  histogramBins: 10000,
};

export interface ImportOptions {
  /** Only these layers. */
  layers?: readonly number[];
  onWarning?: (message: string) => void;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string, file: string, field?: string): never {
  throw new EngineError('header', message, { file, field });
}

function num(v: unknown, file: string, field: string, fallback?: number): number {
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    bad(`${field} is missing`, file, field);
  }
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) bad(`${field} must be a finite number`, file, field);
  return n;
}

function numArray(v: unknown, file: string, field: string, max: number): number[] {
  if (!Array.isArray(v)) bad(`${field} must be an array`, file, field);
  if (v.length > max) bad(`${field} has ${v.length} entries (limit ${max})`, file, field);
  return v.map((x, i) => num(x, file, `${field}[${i}]`));
}

function strArray(v: unknown, file: string, field: string, max: number): string[] {
  if (!Array.isArray(v)) bad(`${field} must be an array`, file, field);
  if (v.length > max) bad(`${field} has ${v.length} entries (limit ${max})`, file, field);
  return v.map((x, i) => {
    if (typeof x !== 'string') bad(`${field}[${i}] must be a string`, file, field);
    return x;
  });
}

/** Logits as strings, or [token, value] pairs, or {token, value} objects. */
function logitList(v: unknown, file: string, field: string): { tokens: string[]; values?: number[] } {
  if (v === undefined || v === null) return { tokens: [] };
  if (!Array.isArray(v)) bad(`${field} must be an array`, file, field);
  if (v.length > IMPORT_LIMITS.logits) bad(`${field} is too long`, file, field);
  const tokens: string[] = [];
  const values: number[] = [];
  for (const [i, x] of v.entries()) {
    if (typeof x === 'string') tokens.push(x);
    else if (Array.isArray(x) && typeof x[0] === 'string') {
      tokens.push(x[0]);
      values.push(num(x[1], file, `${field}[${i}][1]`));
    } else if (isObj(x) && typeof x.token === 'string') {
      tokens.push(x.token);
      values.push(num(x.value, file, `${field}[${i}].value`));
    } else bad(`${field}[${i}] must be a token string or a [token, value] pair`, file, field);
  }
  return values.length === tokens.length && values.length > 0 ? { tokens, values } : { tokens };
}

function example(v: unknown, file: string, field: string): FeatureExample {
  if (!isObj(v)) bad(`${field} must be an object`, file, field);
  const tokens = strArray(v.tokens, file, `${field}.tokens`, IMPORT_LIMITS.tokensPerExample);
  const acts = numArray(
    v.tokens_acts_list ?? v.values,
    file,
    `${field}.tokens_acts_list`,
    IMPORT_LIMITS.tokensPerExample,
  );
  if (acts.length !== tokens.length)
    bad(`${field}: tokens and tokens_acts_list differ in length`, file, field);
  let train = v.train_token_ind ?? v.maxValueTokenIndex;
  if (train === undefined || train === null) train = acts.length ? acts.indexOf(Math.max(...acts)) : 0;
  const t = num(train, file, `${field}.train_token_ind`);
  if (!Number.isInteger(t) || t < 0 || (tokens.length > 0 && t >= tokens.length)) {
    bad(`${field}.train_token_ind ${t} is outside the example`, file, field);
  }
  const ex: FeatureExample = {
    tokens,
    tokens_acts_list: acts,
    train_token_ind: t,
    is_repeated_datapoint: v.is_repeated_datapoint === true,
  };
  if (Array.isArray(v.token_ids) && v.token_ids.length === tokens.length) {
    ex.token_ids = numArray(v.token_ids, file, `${field}.token_ids`, IMPORT_LIMITS.tokensPerExample);
  }
  return ex;
}

function groups(o: Json, file: string): ExampleGroup[] {
  if (Array.isArray(o.examples_quantiles)) {
    if (o.examples_quantiles.length > IMPORT_LIMITS.groups)
      bad('too many example groups', file, 'examples_quantiles');
    return o.examples_quantiles.map((g, gi) => {
      const f = `examples_quantiles[${gi}]`;
      if (!isObj(g)) bad(`${f} must be an object`, file, f);
      const ex = g.examples ?? [];
      if (!Array.isArray(ex)) bad(`${f}.examples must be an array`, file, f);
      if (ex.length > IMPORT_LIMITS.examplesPerGroup) bad(`${f} has too many examples`, file, f);
      return {
        quantile_name: typeof g.quantile_name === 'string' ? g.quantile_name : `group ${gi}`,
        examples: ex.map((e, ei) => example(e, file, `${f}.examples[${ei}]`)),
      };
    });
  }
  if (Array.isArray(o.activations)) {
    // Neuronpedia: a flat list of activation records, best first by maxValue
    if (o.activations.length > IMPORT_LIMITS.examplesPerGroup)
      bad('too many activations', file, 'activations');
    const ex = o.activations.map((e, i) => ({
      ex: example(e, file, `activations[${i}]`),
      max: isObj(e) ? Number(e.maxValue ?? Number.NaN) : Number.NaN,
    }));
    ex.sort((a, b) => (Number.isNaN(b.max) || Number.isNaN(a.max) ? 0 : b.max - a.max));
    return [{ quantile_name: TOP_ACTIVATIONS, examples: ex.map((e) => e.ex) }];
  }
  return [];
}

function quantileValues(v: unknown, file: string): QuantileValue[] {
  if (!Array.isArray(v)) return [];
  if (v.length > IMPORT_LIMITS.histogramBins) bad('quantile_values is too long', file, 'quantile_values');
  return v.map((x, i) => {
    if (isObj(x)) {
      return {
        quantile: num(x.quantile, file, `quantile_values[${i}].quantile`),
        value: num(x.value, file, `quantile_values[${i}].value`),
      };
    }
    // a bare list: evenly spaced quantiles (a guess at such files' meaning)
    return {
      quantile: v.length > 1 ? i / (v.length - 1) : 0.5,
      value: num(x, file, `quantile_values[${i}]`),
    };
  });
}

function histogram(o: Json, file: string): ActivationHistogram | null {
  const h = o.histogram;
  if (isObj(h)) {
    const edges = numArray(h.bin_edges, file, 'histogram.bin_edges', IMPORT_LIMITS.histogramBins + 1);
    const counts = numArray(h.counts, file, 'histogram.counts', IMPORT_LIMITS.histogramBins);
    if (edges.length !== counts.length + 1)
      bad('histogram needs one more edge than counts', file, 'histogram');
    return { bin_edges: edges, counts, exact: h.exact === true };
  }
  if (Array.isArray(o.freq_hist_data_bar_values) && Array.isArray(o.freq_hist_data_bar_heights)) {
    // Neuronpedia: bar centres and heights; edges halfway between centres (guessed layout)
    const centres = numArray(
      o.freq_hist_data_bar_values,
      file,
      'freq_hist_data_bar_values',
      IMPORT_LIMITS.histogramBins,
    );
    const heights = numArray(
      o.freq_hist_data_bar_heights,
      file,
      'freq_hist_data_bar_heights',
      IMPORT_LIMITS.histogramBins,
    );
    if (centres.length !== heights.length || centres.length === 0) return null;
    const w = centres.length > 1 ? centres[1] - centres[0] : 1;
    const edges = [centres[0] - w / 2, ...centres.map((c) => c + w / 2)];
    return { bin_edges: edges, counts: heights, exact: false };
  }
  return null;
}

/** One feature's JSON (any accepted shape) as a FeatureRecord of (layer, index). */
export function normalizeFeatureJson(v: unknown, layer: number, index: number, file: string): FeatureRecord {
  if (!isObj(v)) bad('a feature must be a JSON object', file);
  const g = groups(v, file);
  const top = logitList(v.top_logits ?? v.pos_str, file, 'top_logits');
  const bottom = logitList(v.bottom_logits ?? v.neg_str, file, 'bottom_logits');
  if (!top.values && Array.isArray(v.pos_values) && v.pos_values.length === top.tokens.length) {
    top.values = numArray(v.pos_values, file, 'pos_values', IMPORT_LIMITS.logits);
  }
  if (!bottom.values && Array.isArray(v.neg_values) && v.neg_values.length === bottom.tokens.length) {
    bottom.values = numArray(v.neg_values, file, 'neg_values', IMPORT_LIMITS.logits);
  }
  const allActs = g.flatMap((x) => x.examples.flatMap((e) => e.tokens_acts_list));
  const maxSeen = allActs.length ? Math.max(...allActs) : 0;
  const minSeen = allActs.length ? Math.min(0, ...allActs) : 0;
  const r: FeatureRecord = {
    index,
    layer,
    feature: cantorPair(layer, index),
    examples_quantiles: g,
    top_logits: top.tokens,
    bottom_logits: bottom.tokens,
    act_min: num(v.act_min, file, 'act_min', minSeen),
    act_max: num(v.act_max ?? v.maxActApprox, file, 'act_max', maxSeen),
    quantile_values: quantileValues(v.quantile_values, file),
    histogram: histogram(v, file),
    activation_frequency: num(v.activation_frequency ?? v.frac_nonzero, file, 'activation_frequency', 0),
  };
  // our own extras, when present and consistent
  const parallel = (field: string, n: number) =>
    Array.isArray(v[field]) && (v[field] as unknown[]).length === n
      ? numArray(v[field], file, field, IMPORT_LIMITS.logits)
      : undefined;
  const topIds = parallel('top_logit_ids', top.tokens.length);
  const bottomIds = parallel('bottom_logit_ids', bottom.tokens.length);
  top.values ??= parallel('top_logit_values', top.tokens.length);
  bottom.values ??= parallel('bottom_logit_values', bottom.tokens.length);
  if (topIds) r.top_logit_ids = topIds;
  if (top.values) r.top_logit_values = top.values;
  if (bottomIds) r.bottom_logit_ids = bottomIds;
  if (bottom.values) r.bottom_logit_values = bottom.values;
  if (v.activation_count !== undefined)
    r.activation_count = num(v.activation_count, file, 'activation_count');
  if (v.token_count !== undefined) r.token_count = num(v.token_count, file, 'token_count');
  return r;
}

function gunzipBounded(bytes: Uint8Array, limit: number, file: string): Buffer {
  try {
    return gunzipSync(bytes, { maxOutputLength: limit });
  } catch (e) {
    throw new EngineError('header', `cannot decompress: ${(e as Error).message}`, { file });
  }
}

/** One feature's chunk: [u32 LE length prefix] gzip(JSON), or plain gzip, or plain JSON. */
export function decodeFeatureChunk(raw: Uint8Array, file: string): unknown {
  let body: Uint8Array = raw;
  if (raw.length >= 6 && !(raw[0] === 0x1f && raw[1] === 0x8b) && raw[4] === 0x1f && raw[5] === 0x8b) {
    const declared = raw[0] | (raw[1] << 8) | (raw[2] << 16) | (raw[3] * 2 ** 24);
    body = raw.subarray(4, declared > 0 && declared <= raw.length - 4 ? 4 + declared : raw.length);
  }
  const text =
    body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b
      ? gunzipBounded(body, IMPORT_LIMITS.featureBytes, file).toString('utf8')
      : Buffer.from(body).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EngineError('header', `feature chunk is not JSON: ${(e as Error).message}`, { file });
  }
}

interface BinIndexLayer {
  layer: number;
  file: string;
  offsets: number[];
}

export function readBinaryIndex(indexFile: string): BinIndexLayer[] {
  // a FIFO, device or oversized index is refused before anything is read
  const raw = readSmallRegularBytes(indexFile, IMPORT_LIMITS.indexBytes, 'the feature index');
  const text =
    raw[0] === 0x1f && raw[1] === 0x8b ? gunzipBounded(raw, IMPORT_LIMITS.indexBytes, indexFile) : raw;
  let v: unknown;
  try {
    v = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new EngineError('header', `feature index is not JSON: ${(e as Error).message}`, {
      file: indexFile,
    });
  }
  if (!isObj(v)) bad('feature index must be a JSON object keyed by layer', indexFile);
  const dir = path.dirname(indexFile);
  const out: BinIndexLayer[] = [];
  for (const [key, entry] of Object.entries(v)) {
    const layer = Number(key);
    if (!Number.isInteger(layer) || layer < 0)
      bad(`index key "${key}" is not a layer number`, indexFile, key);
    if (!isObj(entry) || typeof entry.filename !== 'string' || !Array.isArray(entry.offsets)) {
      bad(`index entry ${key} needs "filename" and "offsets"`, indexFile, key);
    }
    const name = entry.filename;
    const file = path.resolve(dir, name);
    if (path.relative(dir, file).startsWith('..') || path.isAbsolute(name)) {
      bad(`index entry ${key} names a file outside the index's folder`, indexFile, `${key}.filename`);
    }
    const offsets = entry.offsets.map((o, i) => {
      if (!Number.isSafeInteger(o) || (o as number) < 0)
        bad(`offsets[${i}] is not a byte offset`, indexFile, key);
      return o as number;
    });
    for (let i = 1; i < offsets.length; i++) {
      if (offsets[i] < offsets[i - 1]) bad(`offsets of layer ${key} decrease at ${i}`, indexFile, key);
    }
    out.push({ layer, file, offsets });
  }
  return out.sort((a, b) => a.layer - b.layer);
}

async function* importBinary(indexFile: string, opts: ImportOptions): AsyncGenerator<FeatureRecord> {
  for (const entry of readBinaryIndex(indexFile)) {
    if (opts.layers && !opts.layers.includes(entry.layer)) continue;
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(entry.file, 'r');
    } catch (e) {
      throw new EngineError(
        'io',
        `cannot open layer ${entry.layer}'s feature file: ${(e as Error).message}`,
        {
          file: entry.file,
        },
      );
    }
    try {
      const size = (await fh.stat()).size;
      const last = entry.offsets[entry.offsets.length - 1];
      // circuit-tracer's frontend asks for bytes o_i..o_{i+1} inclusive; the last offset may
      // therefore equal the file size, never exceed it
      if (last > size) bad(`offsets of layer ${entry.layer} go beyond the ${size}-byte file`, entry.file);
      for (let i = 0; i + 1 < entry.offsets.length; i++) {
        const start = entry.offsets[i];
        const len = entry.offsets[i + 1] - start;
        if (len === 0) continue; // a feature with no data
        if (len > IMPORT_LIMITS.featureBytes)
          bad(`feature ${i} of layer ${entry.layer} is too large`, entry.file);
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, start);
        if (bytesRead !== len) bad(`feature ${i} of layer ${entry.layer} is truncated`, entry.file);
        const where = `${entry.file} (layer ${entry.layer}, feature ${i})`;
        yield normalizeFeatureJson(decodeFeatureChunk(buf, where), entry.layer, i, where);
      }
    } finally {
      await fh.close();
    }
  }
}

/** (layer, index) of a per-feature file, from its name or its fields. */
function featureIdentity(name: string, v: unknown): { layer: number; index: number } | null {
  if (isObj(v) && v.layer !== undefined) {
    // our records carry `index` (and `feature` = the Cantor id); some writers put the in-layer
    // index in `feature` and have no `index`
    const layer = Number(v.layer);
    const index = Number(v.index ?? v.feature);
    if (Number.isInteger(layer) && layer >= 0 && Number.isInteger(index) && index >= 0)
      return { layer, index };
  }
  const base = name.replace(/\.json(\.gz)?$/i, '');
  let m = /^(\d+)[_-](\d+)$/.exec(base);
  if (m) return { layer: Number(m[1]), index: Number(m[2]) };
  m = /^(\d+)$/.exec(base);
  if (m) return cantorUnpair(Number(m[1]));
  return null;
}

function readJsonFile(file: string): unknown {
  // a FIFO, device or oversized file is refused before anything is read
  return decodeFeatureChunk(readSmallRegularBytes(file, IMPORT_LIMITS.featureBytes), file);
}

async function* importFolder(dir: string, opts: ImportOptions): AsyncGenerator<FeatureRecord> {
  const files: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < 2) walk(p, depth + 1);
      else if (e.isFile() && /\.json(\.gz)?$/i.test(e.name)) files.push(p);
    }
  };
  walk(dir, 0);
  const found: { layer: number; index: number; file: string }[] = [];
  for (const file of files) {
    // identity from the name first (cheap); files without one are parsed for their fields
    const fromName = featureIdentity(path.basename(file), null);
    if (fromName) found.push({ ...fromName, file });
    else {
      const id = featureIdentity(path.basename(file), readJsonFile(file));
      if (id) found.push({ ...id, file });
      else opts.onWarning?.(`skipped ${file}: neither its name nor its fields say which feature it is`);
    }
  }
  found.sort((a, b) => a.layer - b.layer || a.index - b.index);
  for (const f of found) {
    if (opts.layers && !opts.layers.includes(f.layer)) continue;
    const v = readJsonFile(f.file);
    const id = featureIdentity(path.basename(f.file), v) ?? f;
    yield normalizeFeatureJson(v, id.layer, id.index, f.file);
  }
}

async function* importJsonl(file: string, opts: ImportOptions): AsyncGenerator<FeatureRecord> {
  // the corpus reader in text mode yields the non-blank lines with their byte offsets
  for await (const line of readCorpus(file, { format: 'text', split: 'line' })) {
    let v: unknown;
    try {
      v = JSON.parse(line.text!);
    } catch (e) {
      throw new EngineError('header', `invalid JSON at byte ${line.offset}: ${(e as Error).message}`, {
        file,
      });
    }
    const id = featureIdentity('', v);
    if (!id) bad(`the record at byte ${line.offset} has no layer and index`, file);
    if (opts.layers && !opts.layers.includes(id.layer)) continue;
    yield normalizeFeatureJson(v, id.layer, id.index, `${file} (byte ${line.offset})`);
  }
}

/** The feature records of `source` (see the header for the layouts), in (layer, index) order. */
export async function* importFeatureData(
  source: string,
  opts: ImportOptions = {},
): AsyncGenerator<FeatureRecord> {
  const abs = path.resolve(source);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new EngineError('missing', 'feature data not found', { file: abs });
  }
  if (st.isDirectory()) {
    for (const idx of [path.join(abs, 'index.json.gz'), path.join(abs, 'features', 'index.json.gz')]) {
      if (fs.existsSync(idx)) {
        yield* importBinary(idx, opts);
        return;
      }
    }
    yield* importFolder(abs, opts);
    return;
  }
  if (/index\.json(\.gz)?$/i.test(abs)) {
    yield* importBinary(abs, opts);
  } else if (/\.(jsonl|ndjson)$/i.test(abs)) {
    yield* importJsonl(abs, opts);
  } else {
    const v = readJsonFile(abs);
    const id = featureIdentity(path.basename(abs), v);
    if (!id) bad('cannot tell which feature this file holds (no layer/index fields, no numeric name)', abs);
    yield normalizeFeatureJson(v, id.layer, id.index, abs);
  }
}

/** Writes records in circuit-tracer's binary layout (index.json.gz + layer_N.bin), for tests and export. */
export function writeBinaryFeatureData(dir: string, records: readonly FeatureRecord[], prefix = true): void {
  fs.mkdirSync(dir, { recursive: true });
  const byLayer = new Map<number, FeatureRecord[]>();
  for (const r of records) byLayer.set(r.layer, [...(byLayer.get(r.layer) ?? []), r]);
  const index: Json = {};
  for (const [layer, recs] of [...byLayer].sort((a, b) => a[0] - b[0])) {
    const n = Math.max(...recs.map((r) => r.index)) + 1;
    const chunks: Buffer[] = [];
    const offsets = [0];
    const byIndex = new Map(recs.map((r) => [r.index, r]));
    for (let i = 0; i < n; i++) {
      const r = byIndex.get(i);
      if (r) {
        const gz = gzipSync(Buffer.from(JSON.stringify(r)));
        if (prefix) {
          const head = Buffer.alloc(4);
          head.writeUInt32LE(gz.length, 0);
          chunks.push(head);
        }
        chunks.push(gz);
      }
      offsets.push(chunks.reduce((a, c) => a + c.length, 0));
    }
    const filename = `layer_${layer}.bin`;
    fs.writeFileSync(path.join(dir, filename), Buffer.concat(chunks));
    index[String(layer)] = { filename, offsets };
  }
  fs.writeFileSync(path.join(dir, 'index.json.gz'), gzipSync(Buffer.from(JSON.stringify(index))));
}
