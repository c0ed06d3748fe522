/**
 * ETA of the features phase (attribute.ts). Batches do not cost the same: each runs only up
 * to its last target's position t, and its cost grows with t faster than linearly (the
 * transposed attention with frozen patterns is quadratic in t, the value/output projections
 * and the contraction with the source vectors linear), plus a fixed cost per batch. Capped
 * selection also re-estimates influence between rounds of batches, at a cost that grows with
 * the rows computed so far.
 *
 * Model: a batch of B rows over t positions whose backward runs through `depth` of the L
 * layers (graphs are truncated at the batch's top layer; with live rows, each row only through
 * its own target's layers: `depth` is then their mean) takes
 * a + e·(top/L) + (depth/L)·(b·B·t + c·B·t²) milliseconds — a fixed cost per run, one per layer
 * the run reaches (its weights are read once a run, whatever B: what makes small batches dear),
 * and the work of its rows — an influence estimate over R rows a' + b'·R. Both are fitted by non-negative
 * least squares to the batches and estimates timed so far, recent ones weighted more (costs
 * drift: the first batches touch fresh memory, other work on the machine comes and goes).
 * Until three batches are timed, a batch's cost is taken proportional to
 * (depth/L)·B·t·(1 + t / tHalf), tHalf from the model's shapes (`attentionHalfPoint`). The ETA
 * is the fitted cost of what is left: the planned batches (known exactly when every feature
 * gets a row; predicted from the current influence ranking under a cap) and the estimates
 * still to come.
 */

export interface PlannedBatch {
  /** Targets in the batch. */
  rows: number;
  /** Positions it runs over: its last target's position + 1. */
  positions: number;
  /** Layers its backward runs through: its top target layer + 1 (absent: all of them). */
  depth?: number;
  /**
   * With live rows (linear-model.ts: each layer computes only the targets reading above it), the
   * layers a row runs through on average, its target layer + 1: the batch's work per row.
   */
  meanDepth?: number;
  /**
   * With live positions (linear-model.ts BackwardPositions: the projections run on each row's
   * positions up to its own target's only), Σ over the rows of (layers it runs through) ×
   * (its position + 1): the projections' work, in place of depth × rows × positions.
   */
  pairLayers?: number;
}

/** What a backward run computes of its rows (linear-model.ts; the runner's defaults: both). */
export interface RowWork {
  /** Each layer only on the targets reading above it (`live_rows`). */
  liveRows: boolean;
  /** The projections only on each target's positions up to its own (`live_pair_*`). */
  livePositions: boolean;
}

/** Every row through every layer and position of its batch. */
export const DENSE_ROWS: RowWork = { liveRows: false, livePositions: false };

/** The layers a batch's rows run through, on average (meanDepth, else depth, else all). */
const workDepth = (b: PlannedBatch, nLayers: number) => b.meanDepth ?? b.depth ?? nLayers;

/** The projections' work of a batch: its live pairs' layers, else rows × positions × depth. */
const linearWork = (b: PlannedBatch, nLayers: number) =>
  b.pairLayers ?? workDepth(b, nLayers) * b.rows * b.positions;

/** Half-lives (in observations) of the weights of past timings. */
const BATCH_HALF_LIFE = 6;
const ESTIMATE_HALF_LIFE = 3;
/**
 * The first batches pay one-off costs (memory touched for the first time, the runtime's
 * buffers growing): once enough later batches are timed, they count this much less.
 */
const WARMUP_BATCHES = 4;
const WARMUP_WEIGHT = 0.1;

/**
 * The position count at which a backward row's quadratic work (the transposed attention:
 * H·hd multiply-adds per pair of positions and layer) equals its linear work (value and
 * output projections 2·d·H·hd, the source contraction d·n̄ per position and layer).
 */
export function attentionHalfPoint(d: number, nHeads: number, headDim: number, meanSlots: number): number {
  return (2 * d * nHeads * headDim + d * meanSlots) / (nHeads * headDim);
}

/** A batch's work under the prior shape (used until the fit has three batches). */
export function batchWork(b: PlannedBatch, tHalf: number, nLayers = 1): number {
  const quadratic = (workDepth(b, nLayers) * b.rows * b.positions ** 2) / tHalf;
  return (linearWork(b, nLayers) + quadratic) / nLayers;
}

/** Solves the k×k system M·x = v (Gaussian elimination, partial pivoting); null if singular. */
function solve(M: number[][], v: number[]): number[] | null {
  const k = v.length;
  const A = M.map((row, i) => [...row, v[i]]);
  for (let col = 0; col < k; col++) {
    let piv = col;
    for (let r = col + 1; r < k; r++) if (Math.abs(A[r][col]) > Math.abs(A[piv][col])) piv = r;
    if (!(Math.abs(A[piv][col]) > 1e-12 * Math.max(1, Math.abs(A[col][col])))) return null;
    [A[col], A[piv]] = [A[piv], A[col]];
    for (let r = 0; r < k; r++) {
      if (r === col) continue;
      const f = A[r][col] / A[col][col];
      for (let c = col; c <= k; c++) A[r][c] -= f * A[col][c];
    }
  }
  return A.map((row, i) => row[k] / row[i]);
}

/**
 * Weighted least squares y ≈ Σ_j coef_j · x_j with every coef_j ≥ 0: the best of the
 * unconstrained fits on each subset of the features whose coefficients all come out ≥ 0
 * (exact for the two or three features used here). Undefined without points.
 */
export function fitNonNegative(
  xs: readonly (readonly number[])[],
  ys: readonly number[],
  ws: readonly number[],
): number[] | undefined {
  const n = ys.length;
  if (n === 0) return undefined;
  const k = xs[0].length;
  let best: { coef: number[]; sse: number } | undefined;
  for (let mask = 1; mask < 1 << k; mask++) {
    const idx = Array.from({ length: k }, (_, j) => j).filter((j) => mask & (1 << j));
    const M = idx.map((a) => idx.map((b) => xs.reduce((s, x, i) => s + ws[i] * x[a] * x[b], 0)));
    const v = idx.map((a) => xs.reduce((s, x, i) => s + ws[i] * x[a] * ys[i], 0));
    const sol = solve(M, v);
    if (!sol || sol.some((c) => !(c >= 0))) continue;
    const coef = new Array<number>(k).fill(0);
    idx.forEach((j, q) => {
      coef[j] = sol[q];
    });
    let sse = 0;
    for (let i = 0; i < n; i++) {
      const e = ys[i] - xs[i].reduce((s, x, j) => s + x * coef[j], 0);
      sse += ws[i] * e * e;
    }
    if (!best || sse < best.sse) best = { coef, sse };
  }
  return best?.coef ?? new Array<number>(k).fill(0);
}

/**
 * Batches of a round, as attribute.ts forms them: targets sorted by position (stable), in runs
 * of B; `layers[i]` is target i's layer (for each batch's depth, with live rows its mean, and
 * with live positions its pairs' layers).
 */
export function planBatches(
  positions: readonly number[],
  batchSize: number,
  layers?: readonly number[],
  work: RowWork = DENSE_ROWS,
): PlannedBatch[] {
  const order = Array.from(positions.keys()).sort((a, b) => positions[a] - positions[b] || a - b);
  const out: PlannedBatch[] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    const end = Math.min(i + batchSize, order.length);
    const batch: PlannedBatch = { rows: end - i, positions: positions[order[end - 1]] + 1 };
    if (layers) {
      let top = 0;
      let sum = 0;
      for (let k = i; k < end; k++) {
        top = Math.max(top, layers[order[k]]);
        sum += layers[order[k]] + 1;
      }
      batch.depth = top + 1;
      if (work.liveRows) batch.meanDepth = sum / (end - i);
      if (work.livePositions) {
        let pairLayers = 0;
        for (let k = i; k < end; k++)
          pairLayers += (work.liveRows ? layers[order[k]] + 1 : top + 1) * (positions[order[k]] + 1);
        batch.pairLayers = pairLayers;
      }
    }
    out.push(batch);
  }
  return out;
}

const decay = (halfLife: number, n: number) =>
  Array.from({ length: n }, (_, i) => 0.5 ** ((n - 1 - i) / halfLife));

/**
 * Features of a batch for the fit [1, top/L, B·t, B·t²] (the last two × depth/L; B·t·depth the
 * live pairs' layers with live positions), scaled alike.
 */
function batchFeatures(b: PlannedBatch, nLayers: number): number[] {
  const f = workDepth(b, nLayers) / nLayers;
  const top = (b.depth ?? nLayers) / nLayers;
  return [1, top, linearWork(b, nLayers) / nLayers / 1e3, (f * b.rows * b.positions ** 2) / 1e6];
}

/**
 * A batch's cost: fixed + perLayer·top/L + (depth/L)·rows·(linear·t + quadratic·t²), top the
 * layers the run reaches, depth those its rows run through (workDepth), t its positions; with
 * live positions depth·rows·t in the linear term is the live pairs' layers (pairLayers). In
 * milliseconds when fitted to timed batches (FeaturesEta.fittedBatchMs), in FLOPs when derived
 * from the model's shapes (batch-plan.ts backwardCostModel).
 */
export class BatchCostModel {
  constructor(
    readonly fixed: number,
    readonly perLayer: number,
    readonly linear: number,
    readonly quadratic: number,
    readonly nLayers: number,
  ) {}

  /**
   * The cost of a run reaching `top` layers whose rows run through `rowLayers` layers in all
   * (Σ of each row's depth), over t positions; `pairLayers` (live positions): Σ of each row's
   * depth × (its position + 1), else rowLayers × t.
   */
  cost(top: number, rowLayers: number, t: number, pairLayers = rowLayers * t): number {
    const L = this.nLayers;
    return (
      this.fixed +
      (this.perLayer * top) / L +
      (this.linear * pairLayers + this.quadratic * rowLayers * t * t) / L
    );
  }

  batchCost(b: PlannedBatch): number {
    return this.cost(b.depth ?? this.nLayers, workDepth(b, this.nLayers) * b.rows, b.positions, b.pairLayers);
  }
}

export class FeaturesEta {
  private readonly batches: { b: PlannedBatch; ms: number }[] = [];
  private readonly estimates: { rows: number; ms: number }[] = [];

  constructor(
    readonly tHalf: number,
    /** Layers of the model (a batch's depth is a fraction of it). */
    readonly nLayers = 1,
  ) {}

  recordBatch(b: PlannedBatch, ms: number): void {
    this.batches.push({ b, ms });
  }

  /** An influence estimate over `rows` rows (with the ranking and planning around it). */
  recordEstimate(rows: number, ms: number): void {
    this.estimates.push({ rows, ms });
  }

  /** Predicted milliseconds of a batch; undefined before any batch was timed. */
  batchMs(b: PlannedBatch): number | undefined {
    const n = this.batches.length;
    if (n === 0) return undefined;
    const fitted = this.fittedBatchMs();
    if (fitted) return fitted.batchCost(b);
    const w = this.batchWeights();
    let num = 0;
    let den = 0;
    this.batches.forEach((o, i) => {
      const x = batchWork(o.b, this.tHalf, this.nLayers);
      num += w[i] * x * o.ms;
      den += w[i] * x * x;
    });
    return den > 0 ? (num / den) * batchWork(b, this.tHalf, this.nLayers) : 0;
  }

  /**
   * The fitted batch-time model, fitted once for many predictions (batch-plan.ts weighs cut
   * points with it); undefined until three batches are timed (the prior has no fixed cost).
   */
  fittedBatchMs(): BatchCostModel | undefined {
    if (this.batches.length < 3) return undefined;
    const [fixed, perLayer, linear, quadratic] = fitNonNegative(
      this.batches.map((o) => batchFeatures(o.b, this.nLayers)),
      this.batches.map((o) => o.ms),
      this.batchWeights(),
    )!;
    return new BatchCostModel(fixed, perLayer, linear / 1e3, quadratic / 1e6, this.nLayers);
  }

  /** The timed batches' weights: recent ones more, the first few (warm-up) less once there are enough. */
  private batchWeights(): number[] {
    const n = this.batches.length;
    const w = decay(BATCH_HALF_LIFE, n);
    if (n >= 2 * WARMUP_BATCHES) for (let i = 0; i < WARMUP_BATCHES; i++) w[i] *= WARMUP_WEIGHT;
    return w;
  }

  /** Predicted milliseconds of an influence estimate over `rows` rows (0 before any). */
  estimateMs(rows: number): number {
    const n = this.estimates.length;
    if (n === 0) return 0;
    const coef = fitNonNegative(
      this.estimates.map((o) => [1, o.rows / 1e3]),
      this.estimates.map((o) => o.ms),
      decay(ESTIMATE_HALF_LIFE, n),
    )!;
    return coef[0] + (coef[1] * rows) / 1e3;
  }

  /**
   * Seconds left for `batches` and for influence estimates over `estimateRows[i]` rows each;
   * undefined before any batch was timed.
   */
  remainingSeconds(
    batches: readonly PlannedBatch[],
    estimateRows: readonly number[] = [],
  ): number | undefined {
    if (this.batches.length === 0) return undefined;
    let ms = 0;
    const fitted = this.fittedBatchMs();
    for (const b of batches) ms += fitted ? fitted.batchCost(b) : this.batchMs(b)!;
    for (const r of estimateRows) ms += this.estimateMs(r);
    return ms / 1000;
  }
}
