/**
 * Synthetic Gemma-2-family checkpoints for benchmarks, up to gemma-2-2b's real size: random
 * bf16 weights (Hugging Face layout, tied embeddings, soft-caps, sliding window; one
 * model.safetensors, or `model-0000i-of-0000N.safetensors` shards + model.safetensors.index.json
 * past `maxShardBytes`, as `save_pretrained` writes them), a per-layer JumpReLU transcoder set
 * in the circuit-tracer layout (config.yaml + layer_{i}.safetensors, GemmaScope hooks
 * ln2.hook_normalized → hook_mlp_out) and, on request, a cross-layer transcoder in
 * circuit-tracer's CLT layout (W_enc_{l}.safetensors, W_dec_{l}.safetensors, hooks
 * hook_resid_mid → hook_mlp_out, as the gemma-2-2b 426k CLT) and, on request, the per-layer set in
 * GemmaScope's own layout (`layer_{l}/width_16k/average_l0_{N}/params.npz`: float32 `.npy`
 * members in an uncompressed zip, `W_enc [d, d_t]`, as published).
 *
 * Streaming and memory-bounded: each file's header is written first (every size follows from
 * the spec), then each tensor's bytes are generated and appended in pieces of CHUNK_ELEMENTS,
 * so the process holds one piece (16 MiB), whatever the checkpoint's size. Values: per tensor
 * a xorshift32 stream (seeded by the spec's folder name and the tensor's name) picks 16-bit
 * indices into a table of the 65536 bf16 values of `offset + scale·u`, u uniform on (−1, 1)
 * (the table's quantiles); ~1 ns per value, so gemma-2-2b's 4.6 G values take seconds and
 * generation is bound by the disk. Same spec → same bytes.
 *
 * Scales (the reason the checkpoints behave like real ones): linear weights give outputs of
 * std ≈ gain·rms(input); Gemma norms are RMS·(1 + w) with w ≈ 0; the transcoders read unit-RMS
 * inputs (ln2.hook_normalized; the CLT's encoder is divided by resid_mid's expected RMS), so
 * pre-activations have std ≈ 1 and a JumpReLU threshold θ keeps about features·P(N(0,1) > θ)
 * active (`thresholdForActive`); decoders are scaled so that the expected reconstruction has
 * RMS ≈ 0.7 of the (unit-RMS, post-norm) MLP output it replaces.
 *
 * `ensureSyntheticGemma2(spec, root, log, parts)` → root/<name>-<hash of spec>/ with `model/`,
 * `transcoders/` (per-layer set) and, when `parts` asks for it, `clt/`. Each part is generated
 * once into a private folder and renamed into place (existence means complete), reused after.
 * Free disk is checked before anything is written.
 *
 * Standalone:
 *   npx tsx bench/synthetic-gemma2.ts [--small | --2b] [--layers N] [--clt] [--gemmascope] [--no-plt] [--cache-dir DIR]
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { encodeFromFloat32 } from '../electron/engine/checkpoint/dtype.ts';
import { encodeHeader, writeAll } from '../electron/engine/checkpoint/safetensors-writer.ts';
import {
  npyHeader,
  seedOf,
  zipCentralHeader,
  zipEnd,
  zipLocalHeader,
} from '../tests/fixtures/tiny-checkpoints.ts';
import { isMainScript } from './shared.ts';

export interface SyntheticGemma2Spec {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  slidingWindow: number;
  /** Transcoder features per layer (per-layer set and CLT alike). */
  features: number;
  /**
   * Mean JumpReLU threshold θ (θ = mean ± 0.2, uniform). Pre-activations have std ≈ 1, so the
   * default 0.6 keeps roughly a quarter of the features active; `thresholdForActive(features,
   * k)` keeps about k per token (GemmaScope sets: 30–100).
   */
  thresholdMean?: number;
  /**
   * Largest model shard in bytes (Hugging Face's `max_shard_size`): past it the model is
   * written as `model-0000i-of-0000N.safetensors` + `model.safetensors.index.json`; a tensor
   * larger than this gets a shard of its own. Absent: one model.safetensors.
   */
  maxShardBytes?: number;
}

export const GEMMA2_MID: SyntheticGemma2Spec = {
  name: 'gemma2-mid',
  layers: 8,
  hidden: 1024,
  heads: 8,
  kvHeads: 4,
  headDim: 128,
  intermediate: 4096,
  vocab: 32768,
  slidingWindow: 4096,
  features: 8192,
};

export const GEMMA2_SMALL: SyntheticGemma2Spec = {
  name: 'gemma2-small',
  layers: 2,
  hidden: 256,
  heads: 4,
  kvHeads: 2,
  headDim: 64,
  intermediate: 1024,
  vocab: 4096,
  slidingWindow: 4096,
  features: 1024,
};

/** Upper tail of the standard normal (Abramowitz–Stegun 7.1.26 erfc, |error| < 1.5e-7). */
export function normalTail(x: number): number {
  const z = x / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * Math.abs(z));
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = poly * Math.exp(-z * z);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/** θ with P(N(0,1) > θ) = active / features (pre-activations have std ≈ 1), to 3 decimals. */
export function thresholdForActive(features: number, active: number): number {
  let lo = -6;
  let hi = 8;
  const p = active / features;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalTail(mid) > p) lo = mid;
    else hi = mid;
  }
  return Math.round(((lo + hi) / 2) * 1000) / 1000;
}

/** gemma-2-2b's shapes; ~30 active features per token and layer (GemmaScope's 16k sets: 30–100). */
export const GEMMA2_2B: SyntheticGemma2Spec = {
  name: 'gemma2-2b',
  layers: 26,
  hidden: 2304,
  heads: 8,
  kvHeads: 4,
  headDim: 256,
  intermediate: 9216,
  vocab: 256000,
  slidingWindow: 4096,
  features: 16384,
  thresholdMean: thresholdForActive(16384, 30),
  maxShardBytes: 1e9,
};

/** The same spec with only its first `n` layers (model and transcoders). */
export function withLayers(spec: SyntheticGemma2Spec, n: number): SyntheticGemma2Spec {
  if (!Number.isInteger(n) || n < 1 || n > spec.layers)
    throw new Error(`layers must be an integer in 1..${spec.layers}, got ${n}`);
  return n === spec.layers ? spec : { ...spec, name: `${spec.name}-L${n}`, layers: n };
}

/** Bump when the generated bytes change, so cached folders are not reused. */
const GENERATOR_VERSION = 2;
const BOS = 2;
/** Values generated and written per piece (16 MiB of bf16). */
const CHUNK_ELEMENTS = 8 << 20;
/** Free space kept beyond what a generation needs. */
const DISK_MARGIN_BYTES = 512 << 20;

export type SyntheticPart = 'model' | 'plt' | 'clt' | 'gemmascope';

export interface SyntheticCheckpoint {
  dir: string;
  modelDir: string;
  /** The per-layer transcoder set (present when 'plt' was among the parts). */
  transcoderDir: string;
  /** The cross-layer transcoder (present when 'clt' was among the parts). */
  cltDir: string;
  /** The per-layer set in GemmaScope's npz layout (present when 'gemmascope' was among the parts). */
  gemmaScopeDir: string;
  /** false when this call generated any part. */
  reused: boolean;
}

export function defaultBenchCacheRoot(): string {
  return path.join(os.tmpdir(), 'circuit-bench');
}

export function syntheticDirName(spec: SyntheticGemma2Spec): string {
  const h = createHash('sha256')
    .update(JSON.stringify({ v: GENERATOR_VERSION, spec }))
    .digest('hex')
    .slice(0, 12);
  return `${spec.name}-${h}`;
}

const PART_FOLDER: Record<SyntheticPart, string> = {
  model: 'model',
  plt: 'transcoders',
  clt: 'clt',
  gemmascope: 'gemmascope',
};

/** Bytes on disk of a file or folder (allocated blocks, so sparse files count as stored). */
export function diskUsage(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.blocks * 512;
  let sum = st.blocks * 512;
  for (const e of fs.readdirSync(p)) sum += diskUsage(path.join(p, e));
  return sum;
}

/** Free bytes for an unprivileged writer on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

export function ensureSyntheticGemma2(
  spec: SyntheticGemma2Spec,
  root = defaultBenchCacheRoot(),
  log: (msg: string) => void = () => {},
  parts: readonly SyntheticPart[] = ['model', 'plt'],
): SyntheticCheckpoint {
  const dir = path.join(root, syntheticDirName(spec));
  const ck: SyntheticCheckpoint = {
    dir,
    modelDir: path.join(dir, PART_FOLDER.model),
    transcoderDir: path.join(dir, PART_FOLDER.plt),
    cltDir: path.join(dir, PART_FOLDER.clt),
    gemmaScopeDir: path.join(dir, PART_FOLDER.gemmascope),
    reused: true,
  };
  const plans = parts.map((p) => ({ part: p, plan: planPart(spec, p) }));
  const missing = plans.filter(({ part }) => !fs.existsSync(path.join(dir, PART_FOLDER[part])));
  if (!missing.length) return ck;
  fs.mkdirSync(dir, { recursive: true });
  const need = missing.reduce((s, m) => s + planBytes(m.plan), 0);
  const free = freeBytes(dir);
  if (need + DISK_MARGIN_BYTES > free) {
    try {
      fs.rmdirSync(dir); // only when empty: nothing was there before
    } catch {}
    throw new Error(
      `not enough disk for ${spec.name} (${missing.map((m) => m.part).join(' + ')}): it needs ${gb(need)} ` +
        `(+ ${gb(DISK_MARGIN_BYTES)} margin) in ${dir}, and only ${gb(free)} is free; ` +
        'free some space, choose another --cache-dir, or generate fewer layers',
    );
  }
  const progress = new Progress(
    need,
    missing.reduce((s, m) => s + m.plan.reduce((n, f) => n + f.tensors.length, 0), 0),
    log,
  );
  log(`generating ${spec.name} (${missing.map((m) => m.part).join(' + ')}, ${gb(need)}) into ${dir} ...`);
  const t0 = performance.now();
  for (const { part, plan } of missing) {
    const final = path.join(dir, PART_FOLDER[part]);
    const tmp = fs.mkdtempSync(path.join(dir, `.${PART_FOLDER[part]}-building-`));
    try {
      for (const f of plan) writeFile(path.join(tmp, f.name), f, progress);
      fs.chmodSync(tmp, 0o755); // mkdtemp makes it private
      fs.renameSync(tmp, final);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (fs.existsSync(final)) continue; // another process finished first
      throw e;
    }
  }
  progress.done();
  log(`generated ${spec.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  ck.reused = false;
  return ck;
}

// ---------------------------------------------------------------------------------------
// Plans: every file's tensors (names, shapes, value tables) known before anything is written

/** A bf16 tensor of `offset + scale·U(−1,1)`; consecutive runs of `run` values cycle through `values`. */
interface TensorPlan {
  name: string;
  shape: number[];
  seedKey: string;
  /** One (scale, offset) per run of `run` values, cycled (a single one for most tensors). */
  values: { scale: number; offset: number }[];
  run: number;
}

/** A file: safetensors (bf16 tensors), an npz of float32 `.npy` members, or text. */
interface FilePlan {
  name: string;
  tensors: TensorPlan[];
  text?: string;
  npz?: boolean;
}

const elementsOf = (t: TensorPlan) => t.shape.reduce((a, b) => a * b, 1);

function planBytes(plan: FilePlan[]): number {
  let s = 0;
  for (const f of plan) {
    s += f.text !== undefined ? Buffer.byteLength(f.text) : 4096;
    for (const t of f.tensors) s += (f.npz ? 4 : 2) * elementsOf(t) + (f.npz ? 256 : 0);
  }
  return s;
}

function planPart(s: SyntheticGemma2Spec, part: SyntheticPart): FilePlan[] {
  if (part === 'model') return planModel(s);
  if (part === 'plt') return planPlt(s);
  if (part === 'gemmascope') return planGemmaScope(s);
  return planClt(s);
}

function tensor(seedKey: string, name: string, shape: number[], scale: number, offset = 0): TensorPlan {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, seedKey: `${seedKey}/${name}`, values: [{ scale, offset }], run: n };
}

/** A linear weight [out, in] whose output std ≈ gain·rms(input). */
function linear(key: string, name: string, out: number, inp: number, gain: number): TensorPlan {
  return tensor(key, name, [out, inp], gain * Math.sqrt(3 / inp));
}

/** Embedding values U(−EMBED_SCALE, EMBED_SCALE); Gemma multiplies them by √d. */
const EMBED_SCALE = 0.5;

function planModel(s: SyntheticGemma2Spec): FilePlan[] {
  const key = `bench/${syntheticDirName(s)}`;
  const d = s.hidden;
  const t: TensorPlan[] = [tensor(key, 'model.embed_tokens.weight', [s.vocab, d], EMBED_SCALE)];
  for (let l = 0; l < s.layers; l++) {
    const b = `model.layers.${l}.`;
    // Gemma norms are RMS·(1 + w): w ≈ 0.
    t.push(tensor(key, `${b}input_layernorm.weight`, [d], 0.1));
    t.push(linear(key, `${b}self_attn.q_proj.weight`, s.heads * s.headDim, d, 1.4));
    t.push(linear(key, `${b}self_attn.k_proj.weight`, s.kvHeads * s.headDim, d, 1.4));
    t.push(linear(key, `${b}self_attn.v_proj.weight`, s.kvHeads * s.headDim, d, 1));
    t.push(linear(key, `${b}self_attn.o_proj.weight`, d, s.heads * s.headDim, 1));
    t.push(tensor(key, `${b}post_attention_layernorm.weight`, [d], 0.1));
    t.push(tensor(key, `${b}pre_feedforward_layernorm.weight`, [d], 0.1));
    t.push(linear(key, `${b}mlp.gate_proj.weight`, s.intermediate, d, 1.2));
    t.push(linear(key, `${b}mlp.up_proj.weight`, s.intermediate, d, 1));
    t.push(linear(key, `${b}mlp.down_proj.weight`, d, s.intermediate, 1.5));
    t.push(tensor(key, `${b}post_feedforward_layernorm.weight`, [d], 0.1));
  }
  // Final gain (1 + w) ≈ 1.5: logits reach the final soft-cap's curved region.
  t.push(tensor(key, 'model.norm.weight', [d], 0.2, 0.5));

  // Shards as save_pretrained cuts them: in order, a new shard when the next tensor would
  // pass the limit (a tensor over the limit alone in its shard).
  const shards: TensorPlan[][] = [[]];
  let size = 0;
  for (const x of t) {
    const bytes = 2 * elementsOf(x);
    if (s.maxShardBytes !== undefined && size > 0 && size + bytes > s.maxShardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(x);
    size += bytes;
  }
  const files: FilePlan[] = [];
  if (shards.length === 1) {
    files.push({ name: 'model.safetensors', tensors: t });
  } else {
    const n = shards.length;
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    shards.forEach((list, i) => {
      const name = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      files.push({ name, tensors: list });
      for (const x of list) weightMap[x.name] = name;
    });
    const sorted = Object.fromEntries(
      Object.keys(weightMap)
        .sort()
        .map((k) => [k, weightMap[k]]),
    );
    const index = {
      metadata: { total_size: 2 * t.reduce((a, x) => a + elementsOf(x), 0) },
      weight_map: sorted,
    };
    files.push({
      name: 'model.safetensors.index.json',
      tensors: [],
      text: `${JSON.stringify(index, null, 2)}\n`,
    });
  }
  const config = {
    architectures: ['Gemma2ForCausalLM'],
    model_type: 'gemma2',
    vocab_size: s.vocab,
    hidden_size: d,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    hidden_act: 'gelu_pytorch_tanh',
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-6,
    rope_theta: 10000.0,
    query_pre_attn_scalar: s.headDim,
    attn_logit_softcapping: 50.0,
    final_logit_softcapping: 30.0,
    sliding_window: s.slidingWindow,
    attention_bias: false,
    tie_word_embeddings: true,
    pad_token_id: 0,
    eos_token_id: 1,
    bos_token_id: BOS,
    torch_dtype: 'bfloat16',
  };
  files.push({ name: 'config.json', tensors: [], text: `${JSON.stringify(config, null, 2)}\n` });
  return files;
}

/** Mean activation² of a JumpReLU feature on N(0,1) pre-activations, given it is active. */
function activeSecondMoment(theta: number): number {
  const phi = Math.exp((-theta * theta) / 2) / Math.sqrt(2 * Math.PI);
  return 1 + (theta * phi) / Math.max(normalTail(theta), 1e-30);
}

/**
 * Uniform half-width of decoder entries so that the expected reconstruction of `sources`
 * summed layers has RMS ≈ 0.7 (a unit-RMS MLP output minus a 30% error).
 */
function decoderScale(s: SyntheticGemma2Spec, sources = 1): number {
  const theta = s.thresholdMean ?? 0.6;
  const active = Math.max(1, s.features * normalTail(theta));
  // Var(recon) = sources · active · E[a²] · scale² / 3 = 0.7²
  return Math.sqrt((3 * 0.49) / (sources * active * activeSecondMoment(theta)));
}

function planPlt(s: SyntheticGemma2Spec): FilePlan[] {
  const d = s.hidden;
  const dt = s.features;
  const files: FilePlan[] = [];
  const names: string[] = [];
  for (let l = 0; l < s.layers; l++) {
    const key = `bench/${syntheticDirName(s)}/transcoders/${l}`;
    const name = `layer_${l}.safetensors`;
    // The read hook (ln2.hook_normalized) has unit RMS, so pre-activations have std ≈ 1.
    files.push({
      name,
      tensors: [
        tensor(key, 'W_enc', [dt, d], Math.sqrt(3 / d)),
        tensor(key, 'W_dec', [dt, d], decoderScale(s)),
        tensor(key, 'b_enc', [dt], 0.1),
        tensor(key, 'b_dec', [d], 0.05),
        tensor(key, 'activation_function.threshold', [dt], 0.2, s.thresholdMean ?? 0.6),
      ],
    });
    names.push(name);
  }
  const yaml =
    `model_name: "${s.name}"\n` +
    'model_kind: "transcoder_set"\n' +
    'feature_input_hook: "ln2.hook_normalized"\n' +
    'feature_output_hook: "hook_mlp_out"\n' +
    'transcoders:\n' +
    names.map((f) => `  - "${f}"\n`).join('');
  files.push({ name: 'config.yaml', tensors: [], text: yaml });
  return files;
}

/**
 * The per-layer set as GemmaScope publishes it: one params.npz per layer, float32, the encoder
 * stored [d, d_t] (a feature's encoder row is a column). The values are those of planPlt's
 * distributions (other draws: the seeds differ).
 */
function planGemmaScope(s: SyntheticGemma2Spec): FilePlan[] {
  const d = s.hidden;
  const dt = s.features;
  const theta = s.thresholdMean ?? 0.6;
  const l0 = Math.round(dt * normalTail(theta));
  const width = dt % 1024 === 0 ? `${dt / 1024}k` : String(dt);
  return Array.from({ length: s.layers }, (_, l) => {
    const key = `bench/${syntheticDirName(s)}/gemmascope/${l}`;
    return {
      name: path.join(`layer_${l}`, `width_${width}`, `average_l0_${l0}`, 'params.npz'),
      npz: true,
      tensors: [
        tensor(key, 'W_enc', [d, dt], Math.sqrt(3 / d)),
        tensor(key, 'W_dec', [dt, d], decoderScale(s)),
        tensor(key, 'threshold', [dt], 0.2, theta),
        tensor(key, 'b_enc', [dt], 0.1),
        tensor(key, 'b_dec', [d], 0.05),
      ],
    };
  });
}

/**
 * Expected RMS of layer l's resid_mid: the scaled embedding (variance EMBED_SCALE²/3 · d)
 * plus l + 1 attention and l MLP outputs, each of unit RMS after Gemma's post-norms.
 */
function residMidRms(s: SyntheticGemma2Spec, l: number): number {
  return Math.sqrt(((EMBED_SCALE * EMBED_SCALE) / 3) * s.hidden + 2 * l + 1);
}

function planClt(s: SyntheticGemma2Spec): FilePlan[] {
  const d = s.hidden;
  const dt = s.features;
  const L = s.layers;
  const files: FilePlan[] = [];
  for (let l = 0; l < L; l++) {
    const key = `bench/${syntheticDirName(s)}/clt/${l}`;
    // hook_resid_mid is not normalized: the encoder divides by its expected RMS so that
    // pre-activations have std ≈ 1, as for the per-layer set.
    files.push({
      name: `W_enc_${l}.safetensors`,
      tensors: [
        tensor(key, `W_enc_${l}`, [dt, d], Math.sqrt(3 / d) / residMidRms(s, l)),
        tensor(key, `b_enc_${l}`, [dt], 0.1),
        tensor(key, `b_dec_${l}`, [d], 0.05),
        tensor(key, `threshold_${l}`, [dt], 0.2, s.thresholdMean ?? 0.6),
      ],
    });
    // Slot j writes layer m = l + j, whose reconstruction sums m + 1 source layers.
    files.push({
      name: `W_dec_${l}.safetensors`,
      tensors: [
        {
          name: `W_dec_${l}`,
          shape: [dt, L - l, d],
          seedKey: `${key}/W_dec_${l}`,
          values: Array.from({ length: L - l }, (_, j) => ({ scale: decoderScale(s, l + j + 1), offset: 0 })),
          run: d,
        },
      ],
    });
  }
  const yaml =
    `model_name: "${s.name}"\n` +
    'model_kind: "cross_layer_transcoder"\n' +
    'feature_input_hook: "hook_resid_mid"\n' +
    'feature_output_hook: "hook_mlp_out"\n';
  files.push({ name: 'config.yaml', tensors: [], text: yaml });
  return files;
}

// ---------------------------------------------------------------------------------------
// Writing

class Progress {
  private bytes = 0;
  private tensors = 0;
  private readonly t0 = performance.now();
  private last = 0;

  constructor(
    private readonly totalBytes: number,
    private readonly totalTensors: number,
    private readonly log: (msg: string) => void,
  ) {}

  add(bytes: number, tensorDone: boolean, name: string): void {
    this.bytes += bytes;
    if (tensorDone) this.tensors++;
    const now = performance.now();
    if (now - this.last < 2000) return;
    this.last = now;
    this.report(name);
  }

  private report(name: string): void {
    const s = (performance.now() - this.t0) / 1000;
    const eta = this.bytes > 0 ? (s * (this.totalBytes - this.bytes)) / this.bytes : 0;
    this.log(
      `  tensor ${this.tensors}/${this.totalTensors} (${name}), ${gb(this.bytes)} / ${gb(this.totalBytes)} written, ` +
        `${s.toFixed(0)} s, ${(this.bytes / 1e6 / Math.max(s, 1e-3)).toFixed(0)} MB/s, ETA ${eta.toFixed(0)} s`,
    );
  }

  done(): void {
    this.report('done');
  }
}

/** The safetensors header (length prefix + space-padded JSON) for these bf16 tensors. */
function header(tensors: readonly TensorPlan[]): Buffer {
  const h: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = 2 * elementsOf(t);
    h[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return encodeHeader(h);
}

function writeFile(file: string, f: FilePlan, progress: Progress): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (f.text !== undefined) {
    fs.writeFileSync(file, f.text);
    return;
  }
  if (f.npz) {
    writeNpz(file, f, progress);
    return;
  }
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fd, header(f.tensors));
    // Even length: the generator draws two 16-bit indices per 32-bit step.
    const buf = new Uint16Array(CHUNK_ELEMENTS + 2);
    for (const t of f.tensors) {
      const gen = new TensorGenerator(t);
      const n = elementsOf(t);
      for (let at = 0; at < n; at += CHUNK_ELEMENTS) {
        const len = Math.min(CHUNK_ELEMENTS, n - at);
        gen.fill(buf, len);
        writeAll(fd, buf.subarray(0, len));
        progress.add(2 * len, at + len >= n, t.name);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * An npz as numpy's `savez` writes it: a zip of stored (uncompressed) `.npy` members, streamed.
 * Each member's values are the tensor's bf16 values widened to float32 (exactly); its CRC-32 is
 * computed while writing and patched into the local header after.
 */
function writeNpz(file: string, f: FilePlan, progress: Progress): void {
  const u32 = (v: number, what: string) => {
    if (v > 0xffffffff) throw new Error(`${file}: ${what} needs zip64, which this writer does not write`);
    return v;
  };
  const fd = fs.openSync(file, 'w');
  try {
    let offset = 0;
    const write = (b: Uint8Array) => {
      writeAll(fd, b);
      offset += b.byteLength;
    };
    const central: Buffer[] = [];
    const bits = new Uint16Array(CHUNK_ELEMENTS + 2);
    const wide = new Uint32Array(CHUNK_ELEMENTS);
    for (const t of f.tensors) {
      const name = Buffer.from(`${t.name}.npy`);
      const header = npyHeader(t.shape);
      const n = elementsOf(t);
      const size = u32(header.length + 4 * n, `member ${t.name}`);
      const at = u32(offset, 'a member offset');
      write(zipLocalHeader(name, size, 0));
      write(name);
      write(header);
      let crc = zlib.crc32(header);
      const gen = new TensorGenerator(t);
      for (let i = 0; i < n; i += CHUNK_ELEMENTS) {
        const len = Math.min(CHUNK_ELEMENTS, n - i);
        gen.fill(bits, len);
        for (let k = 0; k < len; k++) wide[k] = bits[k] << 16; // bf16 → float32, exact
        const bytes = new Uint8Array(wide.buffer, 0, 4 * len);
        crc = zlib.crc32(bytes, crc);
        write(bytes);
        progress.add(4 * len, i + len >= n, t.name);
      }
      const crcBytes = Buffer.alloc(4);
      crcBytes.writeUInt32LE(crc >>> 0);
      fs.writeSync(fd, crcBytes, 0, 4, at + 14);
      central.push(zipCentralHeader(name, size, crc >>> 0, at), name);
    }
    const cdAt = u32(offset, 'the central directory offset');
    const cd = Buffer.concat(central);
    write(cd);
    write(zipEnd(f.tensors.length, cd.length, cdAt));
  } finally {
    fs.closeSync(fd);
  }
}

/** 65536 bf16 bit patterns of `offset + scale·u_k`, u_k = (k + ½)/32768 − 1 ∈ (−1, 1). */
function valueTable(scale: number, offset: number): Uint16Array {
  const f = new Float32Array(65536);
  for (let k = 0; k < 65536; k++) f[k] = offset + scale * ((k + 0.5) / 32768 - 1);
  const bytes = encodeFromFloat32('BF16', f);
  return new Uint16Array(bytes.buffer, bytes.byteOffset, 65536);
}

/** One tensor's values, in order, piece by piece. */
class TensorGenerator {
  private state: number;
  private readonly tables: Uint16Array[];
  /** Position within the current run and which table it uses. */
  private inRun = 0;
  private table = 0;

  constructor(private readonly t: TensorPlan) {
    this.state = seedOf(t.seedKey) || 0x9e3779b9; // xorshift's state must not be 0
    this.tables = t.values.map((v) => valueTable(v.scale, v.offset));
  }

  /** The next `len` values into buf[0..len) (buf has room for len rounded up to even). */
  fill(buf: Uint16Array, len: number): void {
    // 1. Random 16-bit indices, two per xorshift32 step (multiplied: better low bits).
    const pairs = (len + 1) >>> 1;
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, pairs);
    let x = this.state;
    for (let i = 0; i < pairs; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      u32[i] = Math.imul(x, 0x9e3779bb);
    }
    this.state = x;
    // 2. Indices → bf16 values, run by run.
    let i = 0;
    while (i < len) {
      const end = Math.min(len, i + (this.t.run - this.inRun));
      const table = this.tables[this.table];
      for (let k = i; k < end; k++) buf[k] = table[buf[k]];
      this.inRun += end - i;
      i = end;
      if (this.inRun === this.t.run) {
        this.inRun = 0;
        this.table = (this.table + 1) % this.tables.length;
      }
    }
  }
}

if (isMainScript(import.meta.url, 'synthetic-gemma2.ts')) {
  const args = process.argv.slice(2);
  const opt = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const cacheDir = opt('--cache-dir');
  const root = cacheDir ? path.resolve(cacheDir) : defaultBenchCacheRoot();
  let spec = args.includes('--small') ? GEMMA2_SMALL : args.includes('--2b') ? GEMMA2_2B : GEMMA2_MID;
  const layers = opt('--layers');
  if (layers !== undefined) spec = withLayers(spec, Number(layers));
  const parts: SyntheticPart[] = ['model'];
  if (!args.includes('--no-plt')) parts.push('plt');
  if (args.includes('--clt')) parts.push('clt');
  if (args.includes('--gemmascope')) parts.push('gemmascope');
  try {
    const ck = ensureSyntheticGemma2(spec, root, (m) => process.stderr.write(`${m}\n`), parts);
    process.stdout.write(`${ck.dir}${ck.reused ? ' (reused)' : ''}\n`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
}
