/**
 * Runs the compiled linear model for one prompt: backward batches (rows of the adjacency
 * over the source column space) and frozen forward passes (interventions).
 */
import type { ModelConfig } from '../arch/config.ts';
import type { LogitHead } from '../model/logit-head.ts';
import type { WeightFeeder } from '../model/weight-feeder.ts';
import type { DeviceMemory } from '../runtime/device-memory.ts';
import type { DeviceTensors } from '../runtime/device-tensors.ts';
import { ort, runSession } from '../runtime/session.ts';
import type { ForwardCache } from './forward-cache.ts';
import {
  type BackwardConstantSpec,
  type BackwardOutputs,
  backwardOutputLayers,
  backwardTop,
  finalSlot,
  foldedBackwardPattern,
  linearInputs,
  livePairs,
  liveRowCounts,
} from './linear-model.ts';
import { gatherPlaces, joinedWidth, rowGatherIndices } from './row-gather.ts';
import type { DeviceSourceBuilder, SourceBlockKind } from './source-builder.ts';
import type { SourceSpace } from './sources.ts';
import type { Target } from './targets.ts';

const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const i64 = (values: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [values.length]);

/** Largest [B, t, width] float32 activation of one backward run on the CPU (see rows()). */
export const MICRO_BATCH_BYTES = 30 * 1024 * 1024;
/** The same on a GPU, where no page faults are paid and bigger runs use the device better. */
export const DEVICE_MICRO_BATCH_BYTES = 512 * 1024 * 1024;
/**
 * [t, B, width] float32 activations one backward run holds at its peak, about (the gradient, the
 * attention's intermediates, its outputs): with the device's free memory, how many rows fit.
 */
export const BACKWARD_LIVE_ACTIVATIONS = 8;
/** Device memory for the backward's per-t constants of one prompt, at most (least recent t goes first). */
export const DEVICE_CONSTANT_BYTES = 4 * 1024 ** 3;

/** What one prompt's backward runs came to (the trace summary reports it). */
export interface BackwardRunStats {
  /** session.run calls (a batch over the micro-batch limit runs as several). */
  runs: number;
  /** The most rows (targets) and positions (t) one run had. */
  maxRows: number;
  maxPositions: number;
  /** The most bytes of per-prompt constants held at once (device memory on a GPU). */
  constantBytes: number;
  /**
   * Rows one run could take at the longest batch's positions: the micro-batch bound, and on a
   * GPU whose memory is known what fits beside the weights and constants (batches above it split).
   */
  rowLimit: number;
}

export class LinearModelRunner {
  private readonly patternCache = new Map<number, Float32Array[]>();
  readonly stats: BackwardRunStats = { runs: 0, maxRows: 0, maxPositions: 0, constantBytes: 0, rowLimit: 0 };
  /**
   * The backward's inputs that are the same for every batch of one t (frozen patterns and
   * scales, token vectors, source vectors), by t: on a GPU they are uploaded once, at the
   * prompt's full length T when the graph cuts them to t itself (BackwardConstants `prompt`),
   * else once per t, kept up to DEVICE_CONSTANT_BYTES; a batch sends only its read vectors and
   * gets its rows back. On the CPU only the latest t is kept.
   */
  private readonly constants = new Map<
    number,
    { bytes: number; feeds: Promise<Record<string, ort.Tensor>> }
  >();

  constructor(
    private readonly cfg: ModelConfig,
    private readonly cache: ForwardCache,
    private readonly space: SourceSpace,
    /** The backward session for batches reading at layer ≤ top (see backwardTop). */
    private readonly backward: (top: number) => Promise<ort.InferenceSession>,
    private readonly frozen: ort.InferenceSession,
    /** b_dec per write layer [d]: part of every MLP write, never a node. */
    private readonly decoderBias: Float32Array[],
    /** Serves the graphs' weight inputs. */
    private readonly feeder: WeightFeeder,
    /** The unembedding (the frozen graph ends at its input). */
    private readonly head: LogitHead,
    /** Where the per-t constants are kept (device memory on a GPU). */
    private readonly device: DeviceTensors,
    /** The GPU's memory when known (runtime/device-memory.ts): runs are sized to fit it. */
    private readonly deviceMemory: DeviceMemory | null,
    /**
     * Which constants the backward graphs take, and what folding them needs: asked for at the
     * first backward run (it may make the full backward session; interventions never need it).
     */
    private readonly constantSpec: () => Promise<BackwardConstantSpec>,
    /** How the backward graphs return rows (`rows`: gathered in the graph, [B, K, C] at its peak). */
    private readonly outputs: BackwardOutputs = 'layers',
    /**
     * Whether each layer's backward runs only on the targets that read above it (ordered by
     * slot, `live_rows` counted; emitBackwardGraph), or on every target of the batch (for
     * comparison: the same rows, each run to the batch's top).
     */
    readonly liveRows = true,
    /**
     * Builds the source blocks in device memory from their compact form (source-builder.ts), for
     * constants held on a GPU at the prompt's full length; absent: filled on the host and uploaded.
     */
    private readonly sourceBuilder?: DeviceSourceBuilder,
  ) {}

  private maxPlaces?: number;

  /** The most places any column has in a joined row (cross-layer features: one per layer written). */
  private maxGatherPlaces(): number {
    this.maxPlaces ??= gatherPlaces(this.space, this.cache.T, this.cfg.nLayers);
    return this.maxPlaces;
  }

  /** Rows per backward run at most, for batches stopping at position t. */
  private microBatch(t: number): number {
    const width = Math.max(
      this.cfg.hiddenSize,
      this.cfg.nHeads * this.cfg.headDim,
      ...this.space.blocks.map((b) => b.n),
    );
    // In the `rows` form a row's gathered places [K, C] are one more activation, often the largest.
    const gathered = this.outputs === 'rows' ? this.maxGatherPlaces() * this.space.nColumns : 0;
    const rowBytes = Math.max(t * width, gathered) * 4;
    const bytes = this.device.onDevice ? DEVICE_MICRO_BATCH_BYTES : MICRO_BATCH_BYTES;
    let rows = Math.floor(bytes / rowBytes);
    if (this.device.onDevice && this.deviceMemory) {
      // What the weights and this prompt's constants (before their upload: the source blocks,
      // most of them) leave of the memory free at open.
      const sources = this.space.blocks.reduce((n, b) => n + b.vectorBytes, 0);
      const constants = Math.max(this.stats.constantBytes, sources);
      const left = this.deviceMemory.freeBytes - this.feeder.deviceBytes - constants;
      rows = Math.min(rows, Math.floor(left / (BACKWARD_LIVE_ACTIVATIONS * rowBytes)));
    }
    return Math.max(1, rows);
  }

  private constantFeeds(t: number, spec: BackwardConstantSpec): Promise<Record<string, ort.Tensor>> {
    const hit = this.constants.get(t);
    if (hit) {
      // Most recently used last.
      this.constants.delete(t);
      this.constants.set(t, hit);
      return hit.feeds;
    }
    // On a GPU at full length the source blocks are built there (no host fill, fold or upload of them).
    const kinds = this.sourceKinds(spec);
    const builds = this.sourceBuilder !== undefined && this.device.onDevice && t === this.cache.T;
    const host = this.backwardConstants(t, spec, !builds);
    const built = builds ? this.space.blocks.reduce((n, b, l) => n + (kinds[l] ? b.vectorBytes : 0), 0) : 0;
    const bytes = built + Object.values(host).reduce((n, x) => n + (x.data as Float32Array).byteLength, 0);
    const budget = this.device.onDevice ? DEVICE_CONSTANT_BYTES : 0;
    let held = [...this.constants.values()].reduce((n, c) => n + c.bytes, 0);
    for (const [oldT, c] of this.constants) {
      if (held + bytes <= budget) break;
      this.constants.delete(oldT);
      held -= c.bytes;
      void this.dispose(c.feeds);
    }
    const feeds = (async () => {
      const kept: Record<string, ort.Tensor> = {};
      for (const [name, tensor] of Object.entries(host)) kept[name] = await this.device.upload(tensor);
      if (builds) {
        const c = this.cache;
        const blocks = await this.sourceBuilder!.build(
          this.space,
          kinds,
          c.ln2PostScale ?? [],
          spec.postFeedForwardGains,
        );
        // Already in device memory (upload passes a device tensor through as it is).
        for (const [name, tensor] of Object.entries(blocks)) kept[name] = await this.device.upload(tensor);
      }
      // On the device the folded sources live on in device memory; the host copy can go.
      if (this.device.onDevice) this.foldedSources.clear();
      return kept;
    })();
    this.constants.set(t, { bytes, feeds });
    this.stats.constantBytes = Math.max(this.stats.constantBytes, held + bytes);
    return feeds;
  }

  private async dispose(feeds: Promise<Record<string, ort.Tensor>>): Promise<void> {
    if (!this.device.onDevice) return;
    const f = await feeds.catch(() => ({}));
    for (const t of Object.values(f)) this.device.dispose(t);
  }

  /** Frees the per-t constants (device memory on a GPU); they are rebuilt when needed. */
  async dropConstants(): Promise<void> {
    const all = [...this.constants.values()];
    this.constants.clear();
    this.foldedSources.clear();
    for (const c of all) await this.dispose(c.feeds);
  }

  /** Per layer, the source vectors with the post-feed-forward norm folded in, at full length T. */
  private readonly foldedSources = new Map<number, Float32Array>();

  /** Per layer, the source block the backward graphs take (source-builder.ts). */
  private sourceKinds(spec: BackwardConstantSpec): SourceBlockKind[] {
    const wanted = new Set(spec.inputs);
    return this.space.blocks.map((_, l) =>
      wanted.has(linearInputs.foldedSources(l))
        ? 'folded'
        : wanted.has(linearInputs.sources(l))
          ? 'sources'
          : null,
    );
  }

  /**
   * The backward's constants at t (BackwardConstants: t = T when the graph cuts them itself),
   * in the form the backward graphs take them: the frozen patterns transposed with the norm
   * scales around attention folded in, the source vectors (with the post-feed-forward norm
   * folded in where the graphs ask for `sources_folded_l`), the token vectors, and the scales
   * the graphs still apply (W_skip's read map).
   */
  private backwardConstants(
    t: number,
    spec: BackwardConstantSpec,
    /** The source blocks too (false: built on the device, source-builder.ts). */
    withSources = true,
  ): Record<string, ort.Tensor> {
    const c = this.cache;
    const { d, nLayers: L } = c;
    const H = this.cfg.nHeads;
    const wanted = new Set(spec.inputs);
    const host: Record<string, ort.Tensor> = {
      token_vectors: f32(c.tokenVectors.subarray(0, t * d), [t, d]),
    };
    const patterns = this.patterns(t);
    for (let l = 0; l < L; l++) {
      const pre = c.ln1Scale[l].subarray(0, t);
      const post = c.ln1PostScale?.[l].subarray(0, t);
      host[linearInputs.backwardPattern(l)] = f32(foldedBackwardPattern(patterns[l], H, t, pre, post), [
        H,
        t,
        t,
      ]);
      const block = this.space.blocks[l];
      const shape = [t, d, block.n];
      if (withSources && wanted.has(linearInputs.foldedSources(l))) {
        let folded = this.foldedSources.get(l);
        if (!folded) {
          const scale = c.ln2PostScale?.[l];
          const gain = spec.postFeedForwardGains[l];
          if (!scale || !gain)
            throw new Error(`layer ${l}: no post-feed-forward norm to fold into its sources`);
          folded = block.folded(scale, gain);
          this.foldedSources.set(l, folded);
        }
        host[linearInputs.foldedSources(l)] = f32(folded.subarray(0, t * d * block.n), shape);
      }
      if (withSources && wanted.has(linearInputs.sources(l)))
        host[linearInputs.sources(l)] = f32(block.vectors.subarray(0, t * d * block.n), shape);
      const scales: [string, Float32Array[] | undefined][] = [
        [linearInputs.ln2Scale(l), c.ln2Scale],
        [linearInputs.ln2PostScale(l), c.ln2PostScale],
      ];
      for (const [name, arr] of scales)
        if (wanted.has(name) && arr) host[name] = f32(arr[l].subarray(0, t), [t]);
    }
    return host;
  }

  /** Frozen patterns restricted to the first `t` positions ([H, t, t], causal, so exact). */
  private patterns(t: number): Float32Array[] {
    const T = this.cache.T;
    if (t === T) return this.cache.patterns;
    let p = this.patternCache.get(t);
    if (!p) {
      // Batches come in increasing t (sorted by position): only the latest prefix is kept, or a
      // long prompt would hold a copy of every layer's patterns per distinct t.
      this.patternCache.clear();
      const H = this.cfg.nHeads;
      p = this.cache.patterns.map((full) => {
        const out = new Float32Array(H * t * t);
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < t; i++)
            out.set(full.subarray((h * T + i) * T, (h * T + i) * T + t), (h * t + i) * t);
        }
        return out;
      });
      this.patternCache.set(t, p);
    }
    return p;
  }

  /** The frozen patterns and scales at t, those among `names` (null: all). */
  private frozenFeeds(t: number, feeds: Record<string, ort.Tensor>, names: readonly string[] | null) {
    const c = this.cache;
    const H = this.cfg.nHeads;
    const patterns = this.patterns(t);
    const named = names && new Set(names);
    const want = (name: string) => named === null || named.has(name);
    for (let l = 0; l < c.nLayers; l++) {
      if (want(linearInputs.pattern(l))) feeds[linearInputs.pattern(l)] = f32(patterns[l], [H, t, t]);
      const scales: [string, Float32Array[] | undefined][] = [
        [linearInputs.ln1Scale(l), c.ln1Scale],
        [linearInputs.ln2Scale(l), c.ln2Scale],
        [linearInputs.ln1PostScale(l), c.ln1PostScale],
        [linearInputs.ln2PostScale(l), c.ln2PostScale],
      ];
      for (const [name, arr] of scales) if (want(name) && arr) feeds[name] = f32(arr[l].subarray(0, t), [t]);
    }
    if (want(linearInputs.lnFinalScale))
      feeds[linearInputs.lnFinalScale] = f32(c.finalScale.subarray(0, t), [t]);
  }

  /**
   * One backward batch: a row over the source columns for each target. A batch whose
   * [B, t, width] activations would pass MICRO_BATCH_BYTES runs as several smaller ones (its
   * targets are in position order, so the early parts also stop at an earlier t): the backward
   * sessions run without a memory arena, and glibc serves allocations up to 32 MB from its heap
   * but maps (and page-faults) anything larger afresh on every run.
   */
  async rows(targets: readonly Target[]): Promise<Float32Array[]> {
    const t = Math.max(...targets.map((x) => x.position)) + 1;
    const per = this.microBatch(t);
    if (t >= this.stats.maxPositions) this.stats.rowLimit = per;
    if (targets.length <= per) return this.runBatch(targets);
    const parts = Math.ceil(targets.length / per);
    const size = Math.ceil(targets.length / parts);
    const rows: Float32Array[] = [];
    for (let i = 0; i < targets.length; i += size)
      rows.push(...(await this.runBatch(targets.slice(i, i + size))));
    return rows;
  }

  private async runBatch(batch: readonly Target[]): Promise<Float32Array[]> {
    const { d, nLayers: L } = this.cache;
    const B = batch.length;
    // Live rows: the targets by slot, highest first (stable), so those reading above a layer are
    // the first rows; the rows come back in the caller's order.
    const order = Array.from(batch.keys());
    if (this.liveRows) order.sort((a, b) => batch[b].slot - batch[a].slot || a - b);
    const targets = order.map((i) => batch[i]);
    const t = Math.max(...targets.map((x) => x.position)) + 1; // causality: nothing after the last target
    const vectors = new Float32Array(B * d);
    for (const [b, x] of targets.entries()) vectors.set(x.vector, b * d);
    const top = backwardTop(
      targets.map((x) => x.slot),
      L,
    );
    const backward = await this.backward(top);
    // A graph that cuts the constants to t itself (the `prompt` form) takes them at full length.
    const cutsInGraph = backward.inputNames.includes('prefix_length');
    const constants = await this.constantFeeds(cutsInGraph ? this.cache.T : t, await this.constantSpec());
    const liveCounts = this.liveRows
      ? liveRowCounts(
          targets.map((x) => x.slot),
          L,
        )
      : new Array<number>(finalSlot(L) + 1).fill(B);
    const feeds: Record<string, ort.Tensor> = {
      ...this.feeder.feeds(backward.inputNames),
      read_vectors: f32(vectors, [B, d]),
      read_positions: i64(targets.map((x) => x.position)),
      read_slots: i64(targets.map((x) => x.slot)),
      live_rows: i64(liveCounts),
    };
    if (backward.inputNames.includes('live_pair_gather')) {
      const pairs = livePairs(
        targets.map((x) => x.position),
        liveCounts,
        L,
        t,
      );
      feeds.live_pair_gather = new ort.Tensor('int32', pairs.gather, [L, pairs.pairs + 1]);
      feeds.live_pair_counts = i64(pairs.counts);
      feeds.live_pair_index = new ort.Tensor('int32', pairs.index, [t, B]);
    }
    if (cutsInGraph) feeds.prefix_length = i64([t]);
    for (const name of backward.inputNames) if (constants[name]) feeds[name] = constants[name];
    const C = this.space.nColumns;
    const layers = backwardOutputLayers(top, L);
    if (backward.inputNames.includes('row_columns')) {
      const gather = rowGatherIndices(this.space, t, layers);
      feeds.row_columns = new ort.Tensor('int32', gather.indices, [gather.places, C]);
    }
    const out = await runSession(backward, feeds);
    this.stats.runs++;
    this.stats.maxRows = Math.max(this.stats.maxRows, B);
    this.stats.maxPositions = Math.max(this.stats.maxPositions, t);
    // The `rows` form: the graph returned the finished rows [B, C].
    const finished = out.rows?.data as Float32Array | undefined;
    const rows: Float32Array[] = new Array(B);
    if (finished) {
      for (const [b, i] of order.entries()) rows[i] = finished.subarray(b * C, (b + 1) * C);
      return rows;
    }
    const buffer = new Float32Array(B * C);
    for (let i = 0; i < B; i++) rows[i] = buffer.subarray(i * C, (i + 1) * C);
    const scattered = order.map((i) => rows[i]); // in the run's order
    // Layer l's [t, B, n] block: its own output, or columns [offset, offset + n) of the joined
    // one (rows of `width` values per position and target; see BackwardOutputs).
    const joined = out.attr_all?.data as Float32Array | undefined;
    const width = joinedWidth(this.space, layers);
    // A row's entries are exactly zero at source layers its target reads below and at positions
    // after its target's (nothing was injected there for it, and the frozen patterns are causal):
    // only the rest is scattered (about half of a batch of mixed layers and positions).
    const rowLayers = targets.map((x) => backwardOutputLayers(backwardTop([x.slot], L), L));
    let offset = 0;
    for (let l = 0; l < layers; l++) {
      const { n, columns } = this.space.blocks[l];
      const own = joined ? undefined : out[`attr_${l}`];
      const attr = joined ?? (own!.data as Float32Array);
      // attr_l has the live rows at layer l (those reading above it: the first ones), the joined
      // output every row.
      const attrRows = own ? own.dims[1] : B;
      const stride = joined ? width : n;
      const first = joined ? offset : 0;
      offset += n;
      for (let b = 0; b < B; b++) {
        if (l >= rowLayers[b]) continue;
        if (b >= attrRows)
          throw new Error(`backward: attr_${l} has ${attrRows} rows, target ${b} reads above it`);
        const row = scattered[b];
        const positions = targets[b].position + 1;
        for (let p = 0; p < positions; p++) {
          const base = (p * attrRows + b) * stride + first;
          const cols = p * n;
          for (let j = 0; j < n; j++) {
            const col = columns[cols + j];
            if (col >= 0) row[col] += attr[base + j];
          }
        }
      }
    }
    // Layers from the top up: no row reaches them (zero).
    const tokenColumn = this.space.tokenOffset;
    const tokens = joined ? null : (out.attr_tokens.data as Float32Array); // [t, B]
    for (let b = 0; b < B; b++) {
      const row = scattered[b];
      for (let p = 0; p < t; p++)
        row[tokenColumn + p] = joined ? joined[(p * B + b) * width + width - 1] : tokens![p * B + b];
    }
    return rows;
  }

  /**
   * The frozen model's inputs with each source column scaled by `columnScale(col)` plus
   * `extraWrites`. `constants` false leaves out everything that is not a source (position
   * embeddings, b_dec, the BOS residue): with `columnScale` returning s − 1 that is the
   * difference of two edits' inputs, which the (affine) frozen map carries linearly.
   */
  private frozenInputs(
    columnScale: (column: number) => number,
    extraWrites: readonly { layer: number; position: number; vector: Float32Array }[],
    constants: boolean,
  ): Record<string, ort.Tensor> {
    const c = this.cache;
    const { T, d, nLayers: L } = c;
    const embed = constants ? Float32Array.from(c.positionEmbeddings) : new Float32Array(T * d);
    for (let p = 0; p < T; p++) {
      const s = columnScale(this.space.tokenOffset + p);
      if (s === 0) continue;
      for (let k = 0; k < d; k++) embed[p * d + k] += s * c.tokenVectors[p * d + k];
    }
    const feeds: Record<string, ort.Tensor> = {
      ...this.feeder.feeds(this.frozen.inputNames),
      embed_in: f32(embed, [T, d]),
    };
    this.frozenFeeds(T, feeds, this.frozen.inputNames);
    for (let m = 0; m < L; m++) {
      const block = this.space.blocks[m];
      const n = block.n;
      const write = new Float32Array(T * d);
      if (constants) {
        const bias = this.decoderBias[m];
        for (let k = 0; k < d; k++) write[k] = c.bosResidue[m][k];
        for (let p = 0; p < T; p++) for (let k = 0; k < d; k++) write[p * d + k] += bias[k];
      }
      // Each column's vector is its coefficient times its row (the dense block, rounded as it is).
      const { rows, rowIndex, coef } = block;
      for (let p = 0; p < T; p++) {
        for (let j = 0; j < n; j++) {
          const col = block.columns[p * n + j];
          if (col < 0) continue;
          const s = columnScale(col);
          if (s === 0) continue;
          const c = coef[p * n + j];
          const row = rowIndex[p * n + j] * d;
          for (let k = 0; k < d; k++) write[p * d + k] += s * Math.fround(c * rows[row + k]);
        }
      }
      for (const w of extraWrites) {
        if (w.layer !== m) continue;
        for (let k = 0; k < d; k++) write[w.position * d + k] += w.vector[k];
      }
      feeds[linearInputs.mlpWrite(m)] = f32(write, [T, d]);
    }
    return feeds;
  }

  /**
   * The frozen model run forwards with each source column scaled by `columnScale(col)`
   * (1 = unchanged, 0 = ablated). Returns the frozen residuals the targets read from.
   */
  async frozenForward(
    columnScale: (column: number) => number,
    /** Extra vectors written at (layer, position), e.g. a feature that was not active, set to a value. */
    extraWrites: readonly { layer: number; position: number; vector: Float32Array }[] = [],
  ): Promise<{
    residPre: Float32Array[];
    residMid: Float32Array[];
    unembedIn: Float32Array;
    logitsLast: Float32Array;
    /** Pre-softcap next-token logits [V]. */
    logitsPreLast: Float32Array;
  }> {
    const { nLayers: L, T, d } = this.cache;
    const out = await runSession(this.frozen, this.frozenInputs(columnScale, extraWrites, true));
    const unembedIn = out.unembed_in.data as Float32Array;
    const logitsPreLast = await this.head.logitsPre(unembedIn.subarray((T - 1) * d, T * d), 1);
    return {
      residPre: Array.from({ length: L }, (_, l) => out[`resid_pre_${l}`].data as Float32Array),
      residMid: Array.from({ length: L }, (_, l) => out[`resid_mid_${l}`].data as Float32Array),
      unembedIn,
      logitsLast: this.head.applySoftcap(logitsPreLast),
      logitsPreLast,
    };
  }

  private zeroRun?: Promise<Float32Array>; // unembed_in at the last position, every input zero

  /**
   * The change of the pre-softcap next-token logits [V] when each source column `col` is
   * scaled by `columnScale(col)` and `extraWrites` are added: the frozen map applied to the
   * difference of the inputs alone, minus its bias-only value at zero input (exactly zero
   * for a model without biases in the frozen path, e.g. Gemma, Llama). Subtracting two full
   * runs instead would leave float32 rounding of the logits themselves (|logit|·1e-7) in a
   * change that may be far smaller.
   */
  async frozenLogitChange(
    columnScale: (column: number) => number,
    extraWrites: readonly { layer: number; position: number; vector: Float32Array }[] = [],
  ): Promise<Float64Array> {
    const change = await this.frozenUnembedInChange(columnScale, extraWrites);
    return Float64Array.from(await this.head.logitsPre(change, 1));
  }

  /**
   * The change of the unembedding's input [d] at the last position under the same edit (see
   * frozenLogitChange): what a direction target (target-spec.ts) reads, without the float32
   * rounding of two full runs.
   */
  async frozenUnembedInChange(
    columnScale: (column: number) => number,
    extraWrites: readonly { layer: number; position: number; vector: Float32Array }[] = [],
  ): Promise<Float32Array> {
    const { T, d } = this.cache;
    const run = async (scale: (col: number) => number, extra: typeof extraWrites) =>
      (
        (await runSession(this.frozen, this.frozenInputs(scale, extra, false), ['unembed_in'])).unembed_in
          .data as Float32Array
      ).subarray((T - 1) * d, T * d);
    this.zeroRun ??= run(() => 0, []);
    const zero = await this.zeroRun;
    const delta = await run((col) => columnScale(col) - 1, extraWrites);
    // The unembedding is linear: the change of the logits is the head applied to the change of
    // its input (the bias-only value at zero input cancels there, not in the logits).
    return Float32Array.from(delta, (v, i) => v - zero[i]);
  }

  /** Sessions belong to the Attributor (shared by every prompt); the per-t constants are this prompt's. */
  async release(): Promise<void> {
    await this.dropConstants();
  }
}
