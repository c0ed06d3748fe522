/**
 * Streaming per-feature statistics over context windows, in preallocated typed arrays whose
 * size depends only on the feature count and the settings — never on the corpus length:
 *
 *   per feature: active count (f64), max and min positive activation (f32), heap size;
 *   a reservoir of R positive activations (f32)      → quantiles and histogram;
 *   K top-example slots, each with its activation, stream position, context length, max
 *   token index, and 2C+1 context token ids and activations → top activating examples.
 *
 * Top-k: a bounded min-heap per feature over slot indices, ordered by (activation, then
 * stream position descending), so the kept set is exactly the first K examples in the order
 * (activation desc, stream position asc) — the same as sorting every activation and taking K.
 *
 * Quantiles and histogram: Vitter's Algorithm R reservoir of the positive activations, with a
 * deterministic xorshift32 whose state is part of the checkpoint. While a feature has fired at
 * most R times the reservoir holds every value and the quantiles and histogram are exact;
 * beyond that they are estimated from a uniform sample of R values (histogram counts scaled to
 * the true total). A reservoir was chosen over fixed histogram bins because the range of each
 * feature is unknown in advance (fixed bins need a first pass or waste resolution), and it
 * gives exact answers on small corpora.
 */
import { EngineError } from '../errors.ts';

export interface AccumulatorConfig {
  /** d_t of each accumulated layer, in the order of `layers`. */
  dTranscoder: readonly number[];
  /** The transcoder layer of each accumulated layer. */
  layers: readonly number[];
  topK: number;
  /** Tokens of context on each side of the max token. */
  context: number;
  reservoir: number;
  /** Tokens per window (with BOS): orders examples by stream position window·W + pos. */
  windowSize: number;
  seed?: number;
}

/** Arrays that make up the state (names are checkpoint tensor names). */
export interface AccumulatorArrays {
  activeCount: Float64Array;
  actMax: Float32Array;
  minPositive: Float32Array;
  reservoir: Float32Array;
  heapSize: Uint16Array;
  heapSlot: Uint16Array;
  slotAct: Float32Array;
  slotSeq: Float64Array;
  slotLen: Uint16Array;
  slotTrain: Uint16Array;
  slotTokens: Int32Array;
  slotActs: Float32Array;
}

export interface AccumulatorScalars {
  /** Non-BOS token positions seen (the frequency denominator). */
  tokensSeen: number;
  rng: number;
}

export interface TopExample {
  activation: number;
  /** windowIndex·windowSize + position of the max token. */
  seq: number;
  tokenIds: number[];
  acts: number[];
  trainIndex: number;
}

export function accumulatorBytes(cfg: AccumulatorConfig): number {
  const F = cfg.dTranscoder.reduce((a, b) => a + b, 0);
  const S = 2 * cfg.context + 1;
  const K = cfg.topK;
  return F * (8 + 4 + 4 + 2 + cfg.reservoir * 4 + K * (2 + 4 + 8 + 2 + 2 + S * 8));
}

export class FeatureAccumulator {
  readonly nFeatures: number;
  /** Global feature offset of each accumulated layer. */
  readonly layerOffset: number[];
  readonly span: number;
  readonly arrays: AccumulatorArrays;
  tokensSeen = 0;
  private rng: number;

  constructor(readonly cfg: AccumulatorConfig) {
    const { topK: K, context: C, reservoir: R } = cfg;
    if (!Number.isInteger(K) || K < 1 || K > 65535)
      throw new EngineError('argument', 'topK must be in [1, 65535]');
    if (!Number.isInteger(C) || C < 0 || C > 16383)
      throw new EngineError('argument', 'context must be in [0, 16383]');
    if (!Number.isInteger(R) || R < 1)
      throw new EngineError('argument', 'reservoir must be a positive integer');
    if (cfg.layers.length !== cfg.dTranscoder.length)
      throw new Error('layers and dTranscoder differ in length');
    this.layerOffset = [];
    let F = 0;
    for (const d of cfg.dTranscoder) {
      this.layerOffset.push(F);
      F += d;
    }
    this.nFeatures = F;
    this.span = 2 * C + 1;
    const S = this.span;
    this.arrays = {
      activeCount: new Float64Array(F),
      actMax: new Float32Array(F),
      minPositive: new Float32Array(F).fill(Number.POSITIVE_INFINITY),
      reservoir: new Float32Array(F * R),
      heapSize: new Uint16Array(F),
      heapSlot: new Uint16Array(F * K),
      slotAct: new Float32Array(F * K),
      slotSeq: new Float64Array(F * K),
      slotLen: new Uint16Array(F * K),
      slotTrain: new Uint16Array(F * K),
      slotTokens: new Int32Array(F * K * S),
      slotActs: new Float32Array(F * K * S),
    };
    this.rng = (cfg.seed ?? 0x9e3779b9) >>> 0 || 1;
  }

  /** Bytes held by the state (constant for a given configuration). */
  get byteSize(): number {
    return Object.values(this.arrays).reduce((n, a: ArrayBufferView) => n + a.byteLength, 0);
  }

  get scalars(): AccumulatorScalars {
    return { tokensSeen: this.tokensSeen, rng: this.rng };
  }

  restore(arrays: AccumulatorArrays, scalars: AccumulatorScalars): void {
    for (const [name, src] of Object.entries(arrays) as [keyof AccumulatorArrays, ArrayBufferView][]) {
      const dst = this.arrays[name];
      if (!dst || dst.byteLength !== src.byteLength || dst.constructor !== src.constructor) {
        throw new EngineError('shape', `checkpoint array ${name} does not fit this configuration`, {
          tensor: name,
        });
      }
      (dst as Float32Array).set(src as Float32Array);
    }
    this.tokensSeen = scalars.tokensSeen;
    this.rng = scalars.rng >>> 0 || 1;
  }

  private nextRandom(): number {
    let x = this.rng;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.rng = x;
    return x;
  }

  /**
   * Adds one window: `tokens` (BOS at 0) and, per accumulated layer, its activations
   * [T, d_t] row-major. Position 0 (BOS) is not counted.
   */
  observeWindow(windowIndex: number, tokens: ArrayLike<number>, layerActs: readonly Float32Array[]): void {
    const T = tokens.length;
    const { topK: K, context: C, reservoir: R, windowSize: W } = this.cfg;
    const S = this.span;
    const a = this.arrays;
    const { activeCount, actMax, minPositive, reservoir, heapSize, heapSlot, slotAct, slotSeq } = a;
    for (let li = 0; li < layerActs.length; li++) {
      const acts = layerActs[li];
      const dT = this.cfg.dTranscoder[li];
      if (acts.length !== T * dT)
        throw new Error(`layer ${this.cfg.layers[li]}: activations are not [${T}, ${dT}]`);
      const off = this.layerOffset[li];
      for (let p = 1; p < T; p++) {
        const row = p * dT;
        for (let f = 0; f < dT; f++) {
          const v = acts[row + f];
          if (!(v > 0)) continue;
          const g = off + f;
          const n = ++activeCount[g];
          if (v > actMax[g]) actMax[g] = v;
          if (v < minPositive[g]) minPositive[g] = v;
          // reservoir (Algorithm R)
          if (n <= R) {
            reservoir[g * R + n - 1] = v;
          } else {
            const j = Math.floor((this.nextRandom() / 4294967296) * n);
            if (j < R) reservoir[g * R + j] = v;
          }
          // top-k
          const seq = windowIndex * W + p;
          const base = g * K;
          const size = heapSize[g];
          let slot: number;
          if (size < K) {
            slot = size;
          } else {
            const min = heapSlot[base];
            if (!(v > slotAct[base + min] || (v === slotAct[base + min] && seq < slotSeq[base + min])))
              continue;
            slot = min;
          }
          // write the slot
          const si = base + slot;
          slotAct[si] = v;
          slotSeq[si] = seq;
          const start = Math.max(p - C, 0);
          const end = Math.min(p + C, T - 1);
          const len = end - start + 1;
          a.slotLen[si] = len;
          a.slotTrain[si] = p - start;
          const ctx = si * S;
          for (let i = 0; i < len; i++) {
            a.slotTokens[ctx + i] = tokens[start + i];
            a.slotActs[ctx + i] = acts[(start + i) * dT + f];
          }
          if (size < K) {
            heapSlot[base + size] = slot;
            heapSize[g] = size + 1;
            this.siftUp(base, size);
          } else {
            this.siftDown(base, 0, K);
          }
        }
      }
    }
    this.tokensSeen += T > 0 ? T - 1 : 0;
  }

  /** heap order: a before b when a is "smaller" (lower activation, or equal and later). */
  private less(base: number, i: number, j: number): boolean {
    const { slotAct, slotSeq, heapSlot } = this.arrays;
    const si = base + heapSlot[base + i];
    const sj = base + heapSlot[base + j];
    return slotAct[si] < slotAct[sj] || (slotAct[si] === slotAct[sj] && slotSeq[si] > slotSeq[sj]);
  }

  private swap(base: number, i: number, j: number): void {
    const h = this.arrays.heapSlot;
    const t = h[base + i];
    h[base + i] = h[base + j];
    h[base + j] = t;
  }

  private siftUp(base: number, i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(base, i, parent)) break;
      this.swap(base, i, parent);
      i = parent;
    }
  }

  private siftDown(base: number, i: number, n: number): void {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let m = l;
      if (l + 1 < n && this.less(base, l + 1, l)) m = l + 1;
      if (!this.less(base, m, i)) break;
      this.swap(base, i, m);
      i = m;
    }
  }

  /** Global feature index of (accumulated layer position, feature). */
  globalIndex(layerPos: number, f: number): number {
    return this.layerOffset[layerPos] + f;
  }

  /** The kept examples of feature g, by activation descending, then stream position. */
  topExamples(g: number): TopExample[] {
    const K = this.cfg.topK;
    const S = this.span;
    const a = this.arrays;
    const out: TopExample[] = [];
    for (let s = 0; s < a.heapSize[g]; s++) {
      const si = g * K + s;
      const len = a.slotLen[si];
      out.push({
        activation: a.slotAct[si],
        seq: a.slotSeq[si],
        tokenIds: Array.from(a.slotTokens.subarray(si * S, si * S + len)),
        acts: Array.from(a.slotActs.subarray(si * S, si * S + len)),
        trainIndex: a.slotTrain[si],
      });
    }
    return out.sort((x, y) => y.activation - x.activation || x.seq - y.seq);
  }

  /** The positive activations sampled for feature g (all of them while count ≤ R), sorted. */
  sortedSample(g: number): Float32Array {
    const R = this.cfg.reservoir;
    const n = Math.min(R, this.arrays.activeCount[g]);
    return this.arrays.reservoir.slice(g * R, g * R + n).sort();
  }
}

/** Quantile q of sorted values by linear interpolation (numpy's default, "type 7"). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/**
 * Linear histogram of sorted positive values over [0, max] with `bins` bins; counts are
 * scaled by `total / sample size` when the values are a subsample.
 */
export function histogramSorted(
  sorted: ArrayLike<number>,
  max: number,
  bins: number,
  total: number,
): { bin_edges: number[]; counts: number[]; exact: boolean } {
  const edges = Array.from({ length: bins + 1 }, (_, i) => (max * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  const n = sorted.length;
  if (n === 0 || !(max > 0)) return { bin_edges: edges, counts, exact: total === n };
  for (let i = 0; i < n; i++) {
    const b = Math.min(bins - 1, Math.floor((sorted[i] / max) * bins));
    counts[b]++;
  }
  const exact = total === n;
  const scale = exact ? 1 : total / n;
  return { bin_edges: edges, counts: exact ? counts : counts.map((c) => Math.round(c * scale)), exact };
}
