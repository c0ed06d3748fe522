/**
 * The frozen replacement model as a linear map, written out as ONNX ops (no autograd):
 *
 *  - the **backward** graph: for a batch of B targets, inject each target's read vector at
 *    its own (slot, position) and propagate it down through the residual identity, the
 *    transposed attention value/output path with frozen patterns and norm scales (Gemma-2's
 *    post-norms, GQA) and any linear skip W_skip; at every MLP write point contract the
 *    gradient with the source vectors written there; at the embedding, with token vectors.
 *  - the **frozen forward** graph: the same model run forwards with frozen patterns and
 *    scales from given embeddings and MLP writes (an open-loop intervention engine).
 *
 * Injection slots: 2l = resid_pre of layer l, 2l+1 = resid_mid of layer l, 2L = the final
 * residual (logit targets).
 */
import type { ModelConfig } from '../arch/config.ts';
import type { ModelWeights, NormWeights } from '../arch/family.ts';
import type { WeightSource } from '../arch/transformer.ts';
import { EngineError } from '../errors.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';

const ONNX_FLOAT = 1;
const ONNX_FLOAT16 = 10;

/** What the linear maps need to know about the transcoders. */
export interface LinearModelTranscoderInfo {
  readHook: string;
  writeHook: string;
  /** Per layer: W_skip initializer name (already added to the graph) or undefined. */
  skip: (string | undefined)[];
}

export const slotOfResidPre = (l: number) => 2 * l;
export const slotOfResidMid = (l: number) => 2 * l + 1;
export const finalSlot = (nLayers: number) => 2 * nLayers;

/**
 * Where a transcoder's features read the residual stream, as an injection slot: resid_pre for
 * `hook_resid_pre`, else resid_mid (every read hook after attention). Feature targets are
 * injected only there, so the backward injects at no other layer slot (logits: the final one).
 */
export function featureReadSlot(readHook: string, layer: number): number {
  return readHook === 'hook_resid_pre' ? slotOfResidPre(layer) : slotOfResidMid(layer);
}

/** Graph input names, shared by the TS side that feeds them. */
export const linearInputs = {
  pattern: (l: number) => `pattern_${l}`,
  ln1Scale: (l: number) => `ln1_scale_${l}`,
  ln1PostScale: (l: number) => `ln1_post_scale_${l}`,
  ln2Scale: (l: number) => `ln2_scale_${l}`,
  ln2PostScale: (l: number) => `ln2_post_scale_${l}`,
  lnFinalScale: 'ln_final_scale',
  sources: (l: number) => `sources_${l}`,
  mlpWrite: (l: number) => `mlp_write_${l}`,
  /**
   * The backward's frozen pattern of layer l: transposed to [H, key j, query i], with the frozen
   * norm scales around attention folded in (see foldedBackwardPattern).
   */
  backwardPattern: (l: number) => `pattern_back_${l}`,
  /** Source vectors with the frozen post-feed-forward norm folded in (see WriteLayerBlock.folded, sources.ts). */
  foldedSources: (l: number) => `sources_folded_${l}`,
};

/**
 * What the backward folds into its constants instead of running as ops on the [t, B, d]
 * gradient. A frozen norm's transpose is linear, per position, and the same for every target:
 * scale[p] · center(gain ⊙ ·). So around attention the gains (and a LayerNorm's centering) go
 * into derived weight matrices, once per model, and the scales into the frozen pattern, once per
 * prompt (they act per query / key position, which the pattern already mixes); the
 * post-feed-forward norm goes into the source vectors it is contracted with, once per prompt
 * (not where a W_skip also reads the gradient there). Same arithmetic, about six fewer
 * elementwise passes over the gradient per layer.
 */
export function foldsPostFeedForward(names: ModelWeights, tc: LinearModelTranscoderInfo, l: number): boolean {
  return writesThroughPostNorm(names, tc.writeHook) && !!names.layers[l].lnPostFf && !tc.skip[l];
}

/** What a runner needs to build the backward's constants in the form its graphs take them. */
export interface BackwardConstantSpec {
  /** Input names of the full backward graph (top L); truncated graphs take a subset. */
  inputs: readonly string[];
  /** Per layer, the post-feed-forward norm's gain where the graphs fold it into the sources. */
  postFeedForwardGains: readonly (Float32Array | undefined)[];
}

/**
 * Layer l's backward pattern [H, t, t] from the frozen one P [H, t, t] (query i, key j):
 * PB[h, j, i] = P[h, i, j] · postScale[i] · preScale[j], where postScale is the post-attention
 * norm's frozen scale (1 without one) and preScale ln1's.
 */
export function foldedBackwardPattern(
  pattern: Float32Array,
  H: number,
  t: number,
  preScale: Float32Array,
  postScale: Float32Array | undefined,
): Float32Array {
  const out = new Float32Array(H * t * t);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < t; i++) {
      const post = postScale ? postScale[i] : 1;
      const row = (h * t + i) * t;
      for (let j = 0; j < t; j++) out[(h * t + j) * t + i] = pattern[row + j] * post * preScale[j];
    }
  }
  return out;
}

/** Whether the transcoder writes before Gemma's post-feed-forward norm (through it, frozen). */
export function writesThroughPostNorm(names: ModelWeights, writeHook: string): boolean {
  return writeHook === 'mlp.hook_out' && names.layers.some((l) => l.lnPostFf !== undefined);
}

class LinearModelBuilder {
  readonly d: number;

  constructor(
    readonly g: GraphBuilder,
    readonly cfg: ModelConfig,
    readonly names: ModelWeights,
    readonly weights: WeightSource,
    readonly tc: LinearModelTranscoderInfo,
    /** Cuts a per-prompt constant along its position axes to the run's positions (see BackwardConstants). */
    readonly cut: (x: string, axes: readonly number[]) => string = (x) => x,
  ) {
    this.d = cfg.hiddenSize;
  }

  gain(w: NormWeights): string {
    const d = this.d;
    if (this.cfg.normGainOffset === 0) return this.weights.tensor(w.weight, [d]);
    return this.weights.derived(`${w.weight}+1`, [d], () => this.gainValues(w));
  }

  /** A [T] scale input, as a [T, 1] column (or [T, 1, 1] against the backward's [t, B, d] gradient). */
  scaleInput(name: string, batched: boolean): string {
    const s = this.cut(this.g.input(name, 'float32', ['T']), [0]);
    return this.g.unsqueeze(s, batched ? [1, 2] : [1]);
  }

  /** A norm's gain on the host (Gemma's 1 + w in float32), as gain() feeds it. */
  gainValues(w: NormWeights): Float32Array {
    const raw = this.weights.readFloat32(w.weight, [this.d]);
    return this.cfg.normGainOffset === 0 ? raw : raw.map((v) => Math.fround(1 + v));
  }

  /**
   * The transposed output projection with the post-attention norm folded in, [d, H·hd]:
   * dz = G · diag(gain) · C · W_o (C: a LayerNorm's centering I − 11ᵀ/d; RMS: I). Per-model.
   */
  outputBackwardMatrix(l: number, postNorm: NormWeights): string {
    const aw = this.names.layers[l].attn;
    const { hiddenSize: d, nHeads: H, headDim: hd } = this.cfg;
    if (aw.kind === 'fused-conv1d') {
      throw new EngineError(
        'unsupported',
        'a post-attention norm with a fused attention weight is not supported',
        {
          tensor: aw.o,
        },
      );
    }
    const k = H * hd;
    return this.weights.derived(`backward:${l}:attn.o·post-norm`, [d, k], () => {
      const w = this.weights.readFloat32(aw.o, [d, k]); // [d, H·hd]
      const gain = this.gainValues(postNorm);
      const out = new Float32Array(d * k);
      const mean = new Float64Array(k); // column means for the centering
      if (this.cfg.normKind === 'layer')
        for (let r = 0; r < d; r++) for (let c = 0; c < k; c++) mean[c] += w[r * k + c] / d;
      for (let r = 0; r < d; r++)
        for (let c = 0; c < k; c++) out[r * k + c] = gain[r] * (w[r * k + c] - mean[c]);
      return out;
    });
  }

  /**
   * The transposed value projection with ln1 folded in, [KV·hd, d]: dx = dv · W_v · diag(gain) · C
   * (W_v [KV·hd, d]; GPT-2's fused weight: the transpose of its value slice). Per-model.
   */
  valueBackwardMatrix(l: number): string {
    const lw = this.names.layers[l];
    const aw = lw.attn;
    const { hiddenSize: d, nKvHeads: KV, headDim: hd } = this.cfg;
    const rows = aw.kind === 'fused-conv1d' ? d : KV * hd;
    return this.weights.derived(`backward:${l}:attn.v·ln1`, [rows, d], () => {
      let w: Float32Array; // [rows, d], the gradient's map before the norm
      if (aw.kind === 'fused-conv1d') {
        const qkv = this.weights.readFloat32(aw.qkv, [d, 3 * d]); // y = h·W, value columns [2d, 3d)
        w = new Float32Array(d * d);
        for (let i = 0; i < d; i++) for (let o = 0; o < d; o++) w[o * d + i] = qkv[i * 3 * d + 2 * d + o];
      } else {
        w = this.weights.readFloat32(aw.v, [rows, d]);
      }
      const gain = this.gainValues(lw.ln1);
      const out = new Float32Array(rows * d);
      for (let r = 0; r < rows; r++) {
        let mean = 0;
        for (let c = 0; c < d; c++) {
          out[r * d + c] = w[r * d + c] * gain[c];
          mean += out[r * d + c];
        }
        if (this.cfg.normKind !== 'layer') continue;
        mean /= d;
        for (let c = 0; c < d; c++) out[r * d + c] = Math.fround(out[r * d + c] - mean);
      }
      return out;
    });
  }

  center(x: string): string {
    return this.g.sub(x, this.g.reduceMean(x, [-1]));
  }

  /** Forward frozen norm: center (LayerNorm) · scale · gain (+ bias). */
  frozenNorm(x: string, scale: string, w: NormWeights, withBias: boolean): string {
    const g = this.g;
    const centered = this.cfg.normKind === 'layer' ? this.center(x) : x;
    let y = g.mul(g.mul(centered, scale), this.gain(w));
    if (withBias && w.bias) y = g.add(y, this.weights.tensor(w.bias, [this.d]));
    return y;
  }

  /** Transposed frozen norm: scale · center(gain ⊙ G) (centering is symmetric). */
  frozenNormT(grad: string, scale: string, w: NormWeights | undefined): string {
    const g = this.g;
    const gated = w ? g.mul(grad, this.gain(w)) : grad;
    const centered = this.cfg.normKind === 'layer' ? this.center(gated) : gated;
    return g.mul(centered, scale);
  }

  /** v projection weight and the way to apply it: forward y = h·Wᵀ (separate) or h·W (GPT-2 slice). */
  valueWeight(l: number): { w: string; transposedForForward: boolean; bias?: string } {
    const aw = this.names.layers[l].attn;
    const { hiddenSize: d, nKvHeads: KV, headDim: hd } = this.cfg;
    if (aw.kind === 'fused-conv1d') {
      const qkv = this.weights.tensor(aw.qkv, [d, 3 * d]);
      const w = this.g.slice(qkv, [2 * d], [3 * d], [1]); // [d, d], y = h·W
      const b = this.g.slice(this.weights.tensor(aw.qkvBias, [3 * d]), [2 * d], [3 * d], [0]);
      return { w, transposedForForward: false, bias: b };
    }
    const w = this.weights.tensor(aw.v, [KV * hd, d]);
    return {
      w,
      transposedForForward: true,
      bias: aw.vBias ? this.weights.tensor(aw.vBias, [KV * hd]) : undefined,
    };
  }

  outputWeight(l: number): { w: string; transposedForForward: boolean; bias?: string } {
    const aw = this.names.layers[l].attn;
    const { hiddenSize: d, nHeads: H, headDim: hd } = this.cfg;
    if (aw.kind === 'fused-conv1d') {
      return {
        w: this.weights.tensor(aw.o, [d, d]),
        transposedForForward: false,
        bias: this.weights.tensor(aw.oBias, [d]),
      };
    }
    return {
      w: this.weights.tensor(aw.o, [d, H * hd]),
      transposedForForward: true,
      bias: aw.oBias ? this.weights.tensor(aw.oBias, [d]) : undefined,
    };
  }

  /** Transposed skip read map: from the gradient at the read point to the residual. */
  readMapT(grad: string, l: number, scale: () => string): string {
    const hook = this.tc.readHook;
    if (hook === 'hook_resid_mid') return grad;
    if (hook === 'ln2.hook_normalized') return this.frozenNormT(grad, scale(), undefined);
    if (hook === 'mlp.hook_in') return this.frozenNormT(grad, scale(), this.names.layers[l].ln2);
    throw new EngineError('unsupported', `W_skip with read hook "${hook}" is not supported`, {
      field: 'feature_input_hook',
    });
  }

  readMap(x: string, l: number, scale: () => string): string {
    const hook = this.tc.readHook;
    if (hook === 'hook_resid_mid') return x;
    const lw = this.names.layers[l];
    if (hook === 'ln2.hook_normalized') {
      return this.g.mul(this.cfg.normKind === 'layer' ? this.center(x) : x, scale());
    }
    if (hook === 'mlp.hook_in') return this.frozenNorm(x, scale(), lw.ln2, true);
    throw new EngineError('unsupported', `W_skip with read hook "${hook}" is not supported`, {
      field: 'feature_input_hook',
    });
  }
}

/** The highest layer a batch's targets need: `L` when a logit target is among them. */
export function backwardTop(slots: readonly number[], nLayers: number): number {
  let top = 0;
  for (const s of slots) top = Math.max(top, s === finalSlot(nLayers) ? nLayers : Math.floor(s / 2));
  return top;
}

/**
 * The backward graph's `live_rows` for a batch whose targets read at `slots`, ordered highest
 * first (see emitBackwardGraph): for each slot s of 0 … 2L, how many read at s or above.
 */
export function liveRowCounts(slots: readonly number[], nLayers: number): number[] {
  const counts = new Array<number>(finalSlot(nLayers) + 1).fill(0);
  for (const [i, s] of slots.entries()) {
    if (i > 0 && s > slots[i - 1])
      throw new Error('liveRowCounts: targets must come ordered by slot, highest first');
    counts[s]++;
  }
  for (let s = counts.length - 2; s >= 0; s--) counts[s] += counts[s + 1];
  return counts;
}

/** The backward graph's `live_pair_*` inputs for one run (see BackwardPositions). */
export interface LivePairs {
  /** Live (position, row) pairs in all: Σ over rows of position + 1. */
  pairs: number;
  /**
   * [L, pairs + 1] (int32): for each layer l, the places p·r_l + b in the gradient flattened to
   * [t·r_l] of the live pairs of its first r_l rows, row by row, then (where those rows have
   * one) the place of one dead pair, then zeros; r_l the rows its attention runs on, `live_rows`
   * at slot 2l + 1. The dead pair's row of every product is zero: what the −1s of `index` read.
   */
  gather: Int32Array;
  /** [L] (int64 values): how many places layer l's list holds. */
  counts: number[];
  /** [t, B] (int32): each (position, row)'s place in the row-by-row list, −1 (the last) after its row's target. */
  index: Int32Array;
}

/**
 * The live (position, row) pairs of a backward run whose rows' targets sit at `positions` (in
 * the run's order), over t positions, with `liveRows` as fed (liveRowCounts, or B at every slot).
 * Row b is live at positions 0 … positions[b]: the frozen patterns are causal, so a target's
 * gradient is exactly zero after its own position. Listed row by row, the pairs of the first r
 * rows are a prefix of the list whatever r, so one `index` serves every layer.
 */
export function livePairs(
  positions: readonly number[],
  liveRows: readonly number[],
  nLayers: number,
  t: number,
): LivePairs {
  const B = positions.length;
  const start = new Array<number>(B + 1).fill(0); // start[b]: row b's first place in the list
  for (const [b, p] of positions.entries()) {
    if (!(p >= 0 && p < t)) throw new Error(`livePairs: row ${b} at position ${p}, outside 0..${t - 1}`);
    start[b + 1] = start[b] + p + 1;
  }
  const pairs = start[B];
  const index = new Int32Array(t * B).fill(-1);
  for (let b = 0; b < B; b++) for (let p = 0; p <= positions[b]; p++) index[p * B + b] = start[b] + p;
  const width = pairs + 1;
  const gather = new Int32Array(nLayers * width);
  const counts: number[] = [];
  for (let l = 0; l < nLayers; l++) {
    const rows = liveRows[slotOfResidMid(l)];
    if (!(rows >= 0 && rows <= B)) throw new Error(`livePairs: ${rows} live rows at layer ${l} of ${B}`);
    const list = gather.subarray(l * width, (l + 1) * width);
    for (let b = 0; b < rows; b++) for (let p = 0; p <= positions[b]; p++) list[start[b] + p] = p * rows + b;
    // A row whose target is before the last position has a dead (zero) pair there: listed last.
    let dead = -1;
    for (let b = 0; b < rows && dead < 0; b++) if (positions[b] < t - 1) dead = b;
    if (dead >= 0) list[start[rows]] = (t - 1) * rows + dead;
    counts.push(start[rows] + (dead >= 0 ? 1 : 0));
  }
  return { pairs, gather, counts, index };
}

/**
 * The backward graph. Inputs: read_vectors [B, d], read_positions [B], read_slots [B]
 * (int64), token_vectors [T, d], per layer the backward pattern pattern_back_l [H, T, T] (the
 * frozen one transposed, norm scales folded in: foldedBackwardPattern) and the source vectors
 * written at layer l, grouped by position, padded: sources_folded_l [T, d, n_l] with the
 * post-feed-forward norm folded in (WriteLayerBlock.folded), or sources_l (no such norm, or a W_skip,
 * whose read map also takes ln2's scale [T]); in the `prompt` form (BackwardConstants) also
 * prefix_length [1], the run's t ≤ T; with live positions (BackwardPositions) live_pair_gather
 * [L, P + 1], live_pair_counts [L] and live_pair_index [t, B] (livePairs). The weights: the
 * derived O/V backward matrices.
 * The gradient runs as [t, B, d] (position-major: each layer's contraction with its per-position
 * source vectors is then one batched MatMul, no transposes). Outputs: attr_l [t, B_l, n_l] and
 * attr_tokens [t, B], or attr_all (BackwardOutputs).
 *
 * Live rows: the targets come ordered by slot, highest first, and `live_rows` [2L + 1] (int64)
 * says for each slot s how many read at s or above (liveRowCounts). Above its own slot a
 * target's gradient is zero, so G holds only the rows injected so far, [t, live_rows[s], d],
 * grown (zero-padded) at each injection: the projections and the attention at layer l run on
 * the targets that read above it, not on the whole batch. A batch whose targets read at every
 * layer (an influence-ranked round) costs about half of running every row to the top.
 * attr_l then has B_l = live_rows[2l + 2] rows (the targets reading above layer l's MLP
 * write); the joined and gathered outputs are padded back to B. Feeding B for every slot (any
 * order) runs every row through every layer: the same rows.
 *
 * `top` < L: the graph for batches whose targets all read at layer ≤ top (slots ≤ 2·top + 1).
 * Nothing flows above them, so it starts at layer top's resid_mid, with no inputs or outputs
 * for the layers above (their attr_l are zero): a batch of layer-l features costs about
 * (l + 1)/L of a full pass.
 */
/** How read vectors enter the backward: ScatterND (CPU) or elementwise selects (GPU providers). */
export type BackwardInjection = 'scatter' | 'select';

/**
 * How a backward run returns its rows: one output per layer (`attr_l` [t, B, n_l], and
 * `attr_tokens` [t, B]), or all of them joined into one (`attr_all` [t, B, Σ n_l + 1]: the layers
 * below the batch's top in order, then the token column) — one download per run from a GPU
 * instead of one per layer, for the price of a copy on the device — or, `rows`, the finished rows
 * themselves (`rows` [B, C] in the source space's columns): the graph gathers the joined output
 * by `row_columns` [K, C] (int32; for each column its K places in a row of the joined output
 * flattened to [t·W], summed: a cross-layer transcoder's feature is written at several layers;
 * t·W, a zero, where there is none), so the host scatters nothing (see rowGatherIndices).
 */
export type BackwardOutputs = 'layers' | 'joined' | 'rows';

/**
 * How the per-prompt constants (frozen patterns and scales, token and source vectors) come in:
 * cut to the batch's positions t on the host and fed per t (`per-t`: the CPU, where a host
 * subarray costs nothing), or fed at the prompt's whole length T and cut to t inside the graph
 * from the input `prefix_length` [1] (`prompt`: a GPU holds one copy per prompt, uploaded once,
 * instead of one per distinct t).
 */
export type BackwardConstants = 'per-t' | 'prompt';

/**
 * What the attention projections of the backward (the derived O/V matrices: almost all of its
 * FLOPs) compute in: float32, or float16 operands (the gradient and the weights cast in the
 * graph each run, the result cast back; the gradient's sums stay float32) for a GPU whose f16
 * matrix products are faster. Rows then differ from float32's by the operands' rounding (2⁻¹¹
 * relative) and the provider's accumulation; an opt-in, measured by the device bench, not a
 * default. (ONNX Runtime's CPU provider, which has no f16 Gemm, folds the activations' casts
 * away and computes in float32; only weights inlined in the graph come out rounded.)
 */
export type BackwardPrecision = 'f32' | 'f16';

/**
 * The op of those projections: a 2-D Gemm over [t·B, in] (the default) or a MatMul on [t, B, in]
 * (a provider's MatMul and Gemm kernels differ; which is faster is measured, not assumed).
 */
export type BackwardProjection = 'gemm' | 'matmul';

/**
 * Which (position, target) pairs those projections run on: every position of the run for every
 * target (`all`), or only the live ones (`live`). A run covers positions 0 … t − 1, t − 1 its last
 * target's position, but a target at position p has a zero gradient after p (the frozen patterns
 * are causal): at gemma-2-2b's shape about 12% of the projections' rows are such zeros. `live`
 * gathers the live pairs before each layer's projections and spreads the results back (zeros
 * elsewhere) with Gathers by host-made indices (`live_pair_*`, livePairs): full-size products
 * over fewer rows, for four copies per layer of about the gradient's size. The zeros come from
 * one dead pair carried through the products (its rows are zero in every one), not a padding.
 */
export type BackwardPositions = 'live' | 'all';

/** A layer's live pairs in the backward graph: [t, rows, w] → [n, w], and [n, w] → [t, rows, w] with zeros. */
interface LayerPairs {
  compact: (x: string, width: number) => string;
  expand: (y: string) => string;
}

/** The backward graph's form: the same rows in every form (f16 aside); what suits a provider differs. */
export interface BackwardForm {
  injection: BackwardInjection;
  outputs: BackwardOutputs;
  constants: BackwardConstants;
  precision: BackwardPrecision;
  projection: BackwardProjection;
  positions: BackwardPositions;
}

export const CPU_BACKWARD_FORM: BackwardForm = {
  injection: 'scatter',
  outputs: 'layers',
  constants: 'per-t',
  precision: 'f32',
  projection: 'gemm',
  positions: 'live',
};

/** The layers whose rows a backward graph truncated at `top` returns (the top's MLP writes above every target). */
export function backwardOutputLayers(top: number, nLayers: number): number {
  return Math.min(top, nLayers);
}

export function emitBackwardGraph(
  g: GraphBuilder,
  cfg: ModelConfig,
  names: ModelWeights,
  weights: WeightSource,
  tc: LinearModelTranscoderInfo,
  top: number = cfg.nLayers,
  form: BackwardForm = CPU_BACKWARD_FORM,
): void {
  const { injection, outputs } = form;
  // `prompt` constants: every [T, …] input is cut to its first t positions along its position axes.
  const prefixLength = form.constants === 'prompt' ? g.input('prefix_length', 'int64', [1]) : null;
  const cut = (x: string, axes: readonly number[]): string =>
    prefixLength
      ? g.op('Slice', [
          x,
          g.constInt64(axes.map(() => 0)),
          axes.length === 1
            ? prefixLength
            : g.concat(
                axes.map(() => prefixLength),
                0,
              ),
          g.constInt64(axes),
        ])
      : x;
  const b = new LinearModelBuilder(g, cfg, names, weights, tc, cut);
  const { hiddenSize: d, nHeads: H, nKvHeads: KV, headDim: hd, nLayers: L } = cfg;
  const throughPostNorm = writesThroughPostNorm(names, tc.writeHook);

  const readVectors = g.input('read_vectors', 'float32', ['B', d]);
  const readPositions = g.input('read_positions', 'int64', ['B']);
  const readSlots = g.input('read_slots', 'int64', ['B']);
  const tokenVectors = cut(g.input('token_vectors', 'float32', ['T', d]), [0]);
  const liveRows = g.input('live_rows', 'int64', [finalSlot(L) + 1]);
  // Live positions (livePairs): per layer the places of the live pairs, their counts, and where each pair went.
  const pairInputs =
    form.positions === 'live'
      ? {
          gather: g.input('live_pair_gather', 'int32', [L, 'P']),
          counts: g.input('live_pair_counts', 'int64', [L]),
          index: g.input('live_pair_index', 'int32', ['t', 'B']),
        }
      : null;
  /** [1]: how many targets read at `slot` or above (the first rows: they come ordered by slot). */
  const liveAt = (slot: number) => g.slice(liveRows, [slot], [slot + 1], [0]);
  /** The first `rows` ([1]) entries of x along `axis`. */
  const firstRows = (x: string, rows: string, axis: number) =>
    g.op('Slice', [x, g.constInt64([0]), rows, g.constInt64([axis])]);
  /** [t, from, w] → [t, to, w] with zero rows after (from, to: [1]). */
  const padRows = (x: string, from: string, to: string) =>
    g.op('Pad', [x, g.concat([g.constInt64([0, 0, 0, 0]), g.sub(to, from), g.constInt64([0])], 0)]);
  /** G's rows now ([1]): the targets injected so far. */
  let gRows: string | null = null;

  // Each target's read vector is added into G at (target, its position) when G reaches its
  // slot, in a form that depends on G, so the runtime cannot schedule every slot's injection up
  // front (dense one-hot [t, B, d] injections did, holding ~2·L of them).
  const B = g.gather(g.op('Shape', [readVectors]), g.constInt64([0], []));
  /**
   * G with the read vectors of the targets reading at `slot` added, grown to the rows reading
   * at `slot` or above (`rows`, [1]); G null: nothing yet (zero).
   */
  let injectLive: (G: string | null, slot: number, rows: string) => string;
  if (injection === 'scatter') {
    // CPU: a ScatterND that adds rows·d values.
    const batchIndex = g.op('Range', [g.constInt64([0], []), B, g.constInt64([1], [])]);
    const scatterAt = g.concat([g.unsqueeze(readPositions, [1]), g.unsqueeze(batchIndex, [1])], 1); // [B, 2]: (p, b)
    injectLive = (G, slot, rows) => {
      const mask = g.cast(
        g.op('Equal', [firstRows(readSlots, rows, 0), g.constInt64([slot], [])]),
        ONNX_FLOAT,
      );
      const vecs = g.mul(firstRows(readVectors, rows, 0), g.unsqueeze(mask, [1])); // [rows, d], zero where the slot differs
      return g.op('ScatterND', [G ?? zeros(rows), firstRows(scatterAt, rows, 0), vecs], {
        reduction: { s: 'add' },
      });
    };
  } else {
    // GPU providers: elementwise ops only (a provider without a ScatterND kernel would run it on
    // the CPU, copying G across the bus and back at every slot). G' = where(at, G + v, G), where
    // `at` [T, B, 1] marks (position, target) for the targets reading at this slot: the same
    // additions as the scatter. Positions and slots are folded into one index key.
    const S = 2 * L + 2;
    const key = g.unsqueeze(g.add(g.mul(readPositions, g.constInt64([S], [])), readSlots), [0]); // [1, B]
    const T = g.gather(g.op('Shape', [tokenVectors]), g.constInt64([0], []));
    const grid = g.unsqueeze(
      g.mul(g.op('Range', [g.constInt64([0], []), T, g.constInt64([1], [])]), g.constInt64([S], [])),
      [1],
    ); // [T, 1]
    const zero = g.constFloat([0], [1]);
    injectLive = (G, slot, rows) => {
      const vecs = g.unsqueeze(firstRows(readVectors, rows, 0), [0]); // [1, rows, d]
      const at = g.unsqueeze(
        g.op('Equal', [firstRows(key, rows, 1), g.add(grid, g.constInt64([slot], []))]),
        [2],
      ); // [t, rows, 1]
      // Into nothing: the vectors where they go and zero elsewhere, broadcast to [t, rows, d] on
      // the device (a zero tensor would be made on the host, ConstantOfShape having no GPU kernel,
      // and copied over the bus at every run).
      return G === null ? g.where(at, vecs, zero) : g.where(at, g.add(G, vecs), G);
    };
  }
  const inject = (G: string | null, slot: number): string => {
    const rows = liveAt(slot);
    const grown = G === null ? null : padRows(G, gRows!, rows);
    gRows = rows;
    return injectLive(grown, slot, rows);
  };
  /** [t, rows, d] zeros (the scatter form's start). */
  const zeros = (rows: string): string => {
    const shape = g.concat(
      [g.slice(g.op('Shape', [tokenVectors]), [0], [1], [0]), rows, g.constInt64([d])],
      0,
    ); // [t, rows, d]
    return g.op('ConstantOfShape', [shape], {
      value: {
        t: { name: 'zero', type: 'float32', dims: [1], data: { kind: 'inline', bytes: new Uint8Array(4) } },
      },
    });
  };
  /**
   * [t, B, in] · W (W [in, out], or [out, in] with transB) → [t, B, out], in the form's precision
   * and op; plus `addTo` [t, B, out] when given, inside the float32 Gemm (its C input: no separate
   * pass over [t, B, out], and the CPU provider may write into C's buffer).
   */
  const project = (
    x: string,
    inDim: number,
    outDim: number,
    w: string,
    transB: boolean,
    pairs: LayerPairs | null,
    addTo?: string,
  ) => {
    const f16 = form.precision === 'f16';
    const operand = f16 ? (v: string) => g.cast(v, ONNX_FLOAT16) : (v: string) => v;
    const result = f16 ? (v: string) => g.cast(v, ONNX_FLOAT) : (v: string) => v;
    const plus = (y: string) => (addTo ? g.add(addTo, y) : y);
    if (pairs) {
      // Live pairs only: [n, in] in, [n, out] out, spread back to [t, rows, out] with zeros.
      const live = pairs.compact(x, inDim);
      if (form.projection === 'matmul') {
        const weight = operand(transB ? g.transpose(w, [1, 0]) : w);
        return plus(pairs.expand(result(g.matmul(operand(live), weight))));
      }
      const fused = addTo !== undefined && !f16;
      const c = fused ? pairs.compact(addTo, outDim) : undefined;
      const y = pairs.expand(result(g.linear(operand(live), operand(w), c, transB)));
      return fused ? y : plus(y);
    }
    if (form.projection === 'matmul') {
      const weight = operand(transB ? g.transpose(w, [1, 0]) : w);
      return plus(result(g.matmul(operand(x), weight)));
    }
    const shape = g.op('Shape', [x]);
    const flat = g.reshape(x, [-1, inDim]);
    const fused = addTo !== undefined && !f16;
    const c = fused ? g.reshape(addTo, [-1, outDim]) : undefined;
    const y = result(g.linear(operand(flat), operand(w), c, transB));
    const outShape = g.concat([g.slice(shape, [0], [2], [0]), g.constInt64([outDim])], 0);
    const out = g.op('Reshape', [y, outShape]);
    return fused ? out : plus(out);
  };
  /**
   * Layer l's live (position, row) pairs (BackwardPositions `live`; host-made by livePairs): the
   * attention there runs on `rows` (G's rows then, [1]) targets.
   */
  const layerPairs = (l: number, rows: string): LayerPairs | null => {
    if (!pairInputs) return null;
    const n = g.slice(pairInputs.counts, [l], [l + 1], [0]); // [1]
    const gatherAt = g.reshape(
      g.op('Slice', [
        pairInputs.gather,
        g.constInt64([l, 0]),
        g.concat([g.constInt64([l + 1]), n], 0),
        g.constInt64([0, 1]),
      ]),
      [-1],
    ); // [n]: places in the gradient flattened to [t·rows]
    const expandAt = firstRows(pairInputs.index, rows, 1); // [t, rows]: places in the list, −1: none
    const compacted = new Map<string, string>();
    return {
      compact: (x, width) => {
        let c = compacted.get(x);
        if (!c) {
          c = g.gather(g.reshape(x, [-1, width]), gatherAt, 0);
          compacted.set(x, c);
        }
        return c;
      },
      // The −1 places read the last row: a dead pair's, zero (livePairs).
      expand: (y) => g.gather(y, expandAt, 0),
    };
  };
  /** Contraction with everything written at layer l's MLP output, then the W_skip path. */
  const contract = (G: string, l: number): string => {
    const lw = names.layers[l];
    attrRows[l] = gRows!;
    if (foldsPostFeedForward(names, tc, l)) {
      // The post-feed-forward norm is in the source vectors (WriteLayerBlock.folded).
      const folded = cut(g.input(linearInputs.foldedSources(l), 'float32', ['T', d, `n_${l}`]), [0]);
      attrs[l] = g.matmul(G, folded); // [t, B, d]·[t, d, n] → [t, B, n]
      return G;
    }
    const sources = cut(g.input(linearInputs.sources(l), 'float32', ['T', d, `n_${l}`]), [0]);
    const atWrite =
      throughPostNorm && lw.lnPostFf
        ? b.frozenNormT(G, b.scaleInput(linearInputs.ln2PostScale(l), true), lw.lnPostFf)
        : G;
    attrs[l] = g.matmul(atWrite, sources); // [t, B, d]·[t, d, n] → [t, B, n]
    const skip = tc.skip[l];
    if (!skip) return G;
    const gradRead = g.matmul(atWrite, skip); // d/dx of x·W_skipᵀ
    return g.add(
      G,
      b.readMapT(gradRead, l, () => b.scaleInput(linearInputs.ln2Scale(l), true)),
    );
  };

  const attrs: string[] = [];
  /** attrs[l]'s rows ([1]): the targets reading above layer l's MLP write. */
  const attrRows: string[] = [];
  // Targets read at the final slot (logits) or at their layer's feature read slot: an injection
  // anywhere else would add zeros (two elementwise passes over G, or a ScatterND copy, for nothing).
  const readsAtResidPre = featureReadSlot(tc.readHook, 0) === slotOfResidPre(0);
  // G null: zero so far (a truncated graph's top, before its first injection).
  let G: string | null = top >= L ? inject(null, finalSlot(L)) : null;
  for (let l = Math.min(top, L - 1); l >= 0; l--) {
    const lw = names.layers[l];
    // The top layer of a truncated graph: nothing above, so no MLP write reaches a target.
    if (G !== null) G = contract(G, l);
    if (!readsAtResidPre) G = inject(G, slotOfResidMid(l));
    if (G === null) {
      // Read at resid_pre and nothing injected yet: attention carries zero back as zero.
      G = inject(G, slotOfResidPre(l));
      continue;
    }

    // Attention, transposed: output projection (post-norm gain folded in), frozen pattern (the
    // norm scales folded in, transposed), value projection (ln1's gain folded in).
    const o = b.outputWeight(l);
    const pairs = layerPairs(l, gRows!);
    // forward attn = z·W_oᵀ (separate: W_o [d, H·hd]) or z·W (GPT-2): dz = G·W_o or G·Wᵀ.
    const gz = lw.lnPostAttn
      ? project(G, d, H * hd, b.outputBackwardMatrix(l, lw.lnPostAttn), false, pairs)
      : project(G, d, H * hd, o.w, !o.transposedForForward, pairs);
    // The positions mixed by one product per head over every target at once ([H, t, t]·[H, t, B·hd]),
    // not one per target and head (B·H products of [t, t]·[t, hd], the pattern broadcast): the
    // same sums; 2.4× faster on the CPU at gemma-2-2b's shape (t 11, B 256).
    const gzHeads = g.reshape(g.transpose(g.reshape(gz, [0, 0, H, hd]), [2, 0, 1, 3]), [H, 0, -1]); // [H, t, B·hd]
    const pattern = cut(g.input(linearInputs.backwardPattern(l), 'float32', [H, 'T', 'T']), [1, 2]);
    const gv = g.matmul(pattern, gzHeads); // [H, t, B·hd]
    const groups = H / KV;
    const gvKv =
      groups === 1
        ? gv
        : g.op('ReduceSum', [g.reshape(gv, [KV, groups, -1]), g.constInt64([1])], { keepdims: { i: 0 } }); // query heads kv·groups + j summed
    const tB = g.slice(g.op('Shape', [gz]), [0], [2], [0]); // [t, B]
    const gvHeads = g.op('Reshape', [gvKv, g.concat([g.constInt64([KV]), tB, g.constInt64([hd])], 0)]); // [KV, t, B, hd]
    const gvFlat = g.reshape(g.transpose(gvHeads, [1, 2, 0, 3]), [0, 0, KV * hd]); // [t, B, KV·hd]
    G = project(gvFlat, KV * hd, d, b.valueBackwardMatrix(l), false, pairs, G); // G + the value path
    if (readsAtResidPre) G = inject(G, slotOfResidPre(l));
  }
  if (G === null) throw new Error(`backward graph for top ${top}: no layer to inject at`);
  const tokens = g.op('ReduceSum', [g.mul(G, g.unsqueeze(tokenVectors, [1])), g.constInt64([-1])], {
    keepdims: { i: 0 },
  });
  const layers = attrs.slice(0, backwardOutputLayers(top, L));
  if (outputs === 'joined' || outputs === 'rows') {
    const batch = g.unsqueeze(B, [0]);
    const padded = layers.map((attr, l) => padRows(attr, attrRows[l], batch)); // [t, B, n_l]
    const joined = g.concat([...padded, g.unsqueeze(tokens, [2])], 2); // [t, B, W]
    if (outputs === 'joined') {
      g.output(joined, 'attr_all');
      return;
    }
    const columns = g.input('row_columns', 'int32', ['K', 'C']);
    // Each target's joined row flattened ([B, t·W]) with one zero after it, for columns with no place.
    const perTarget = g.op('Pad', [
      g.reshape(g.transpose(joined, [1, 0, 2]), [0, -1]),
      g.constInt64([0, 0, 0, 1]),
    ]);
    const places = g.gather(perTarget, columns, 1); // [B, K, C]
    g.output(g.op('ReduceSum', [places, g.constInt64([1])], { keepdims: { i: 0 } }), 'rows');
    return;
  }
  for (const [l, attr] of layers.entries()) g.output(attr, `attr_${l}`);
  g.output(tokens, 'attr_tokens');
}

/**
 * The frozen forward graph. Inputs: embed_in [T, d] (token source vectors + constant
 * position embeddings), per layer mlp_write_l [T, d] (what the MLP writes at the
 * transcoder's write hook, excluding the skip term), frozen patterns and scales.
 * Outputs: resid_pre_l and resid_mid_l [T, d] per layer and unembed_in [T, d].
 */
export function emitFrozenForwardGraph(
  g: GraphBuilder,
  cfg: ModelConfig,
  names: ModelWeights,
  weights: WeightSource,
  tc: LinearModelTranscoderInfo,
): void {
  const b = new LinearModelBuilder(g, cfg, names, weights, tc);
  const { hiddenSize: d, nHeads: H, nKvHeads: KV, headDim: hd, nLayers: L } = cfg;
  const throughPostNorm = writesThroughPostNorm(names, tc.writeHook);
  let x = g.input('embed_in', 'float32', ['T', d]);
  for (let l = 0; l < L; l++) {
    const lw = names.layers[l];
    g.output(x, `resid_pre_${l}`);
    const h = b.frozenNorm(x, b.scaleInput(linearInputs.ln1Scale(l), false), lw.ln1, true);
    const v = b.valueWeight(l);
    const vals = g.linear(h, v.w, v.bias, v.transposedForForward); // [T, KV·hd]
    const vHeads = g.unsqueeze(g.transpose(g.reshape(vals, [0, KV, hd]), [1, 0, 2]), [1]); // [KV, 1, T, hd]
    const pattern = g.input(linearInputs.pattern(l), 'float32', [H, 'T', 'T']);
    const z = g.matmul(g.reshape(pattern, [KV, H / KV, 0, -1]), vHeads); // [KV, G, T, hd]
    const zFlat = g.reshape(g.transpose(g.reshape(z, [H, -1, hd]), [1, 0, 2]), [0, H * hd]);
    const o = b.outputWeight(l);
    let attn = g.linear(zFlat, o.w, o.bias, o.transposedForForward);
    if (lw.lnPostAttn)
      attn = b.frozenNorm(attn, b.scaleInput(linearInputs.ln1PostScale(l), false), lw.lnPostAttn, false);
    const mid = g.add(x, attn);
    g.output(mid, `resid_mid_${l}`);
    let mlp = g.input(linearInputs.mlpWrite(l), 'float32', ['T', d]);
    const skip = tc.skip[l];
    if (skip) {
      const read = b.readMap(mid, l, () => b.scaleInput(linearInputs.ln2Scale(l), false));
      mlp = g.add(mlp, g.linear(read, skip, undefined, true));
    }
    if (throughPostNorm && lw.lnPostFf) {
      mlp = b.frozenNorm(mlp, b.scaleInput(linearInputs.ln2PostScale(l), false), lw.lnPostFf, false);
    }
    x = g.add(mid, mlp);
  }
  const final = b.frozenNorm(x, b.scaleInput(linearInputs.lnFinalScale, false), names.finalNorm, true);
  // The logits come from the logit head (logit-head.ts): the unembedding is never a graph input.
  g.output(final, 'unembed_in');
}
