/**
 * How a round of feature targets is cut into backward batches (attribute.ts).
 *
 * A backward run covers positions 0..t−1, t − 1 being its last target's position, and a target
 * at position p has a zero gradient at every position after p: those rows' work past p is
 * wasted. Sorted by position and cut every B targets, a round's batches mix several positions
 * (at gemma-2-2b's shape, 11 tokens, rounds of 1024: about 12% of the backward's work went on
 * such zeros). Cutting where the position changes wastes nothing, at the price of more runs,
 * each reading the weights of every layer it reaches once (and small products run less
 * efficiently). Under live positions (linear-model.ts BackwardPositions, the default) the
 * projections skip those zeros inside a run, and a cut saves only the attention's mixing: by
 * gemma-2-2b's shapes no cut then pays.
 *
 * `planBatchesByCost` chooses the cut points of the position-sorted round that minimise the
 * total cost (dynamic programming over the cut points, O(n·B)) under a BatchCostModel (eta.ts):
 * by default the backward's cost by shape (`backwardCostModel`: weights read per run against
 * multiply-adds per row and position), so the same prompt is always cut the same way; or the
 * batch times fitted so far. Batches hold between `minRows` and B targets (a round smaller than
 * `minRows` is one batch); on a tie the fewer batches win.
 */
import { EngineError } from '../errors.ts';
import { BatchCostModel, type PlannedBatch, planBatches, type RowWork } from './eta.ts';

export type BatchCuts = 'fixed' | 'cost' | 'timed' | 'positions';

/**
 * How the features phase cuts its rounds (`CIRCUIT_BATCH_CUTS`): every B targets (`fixed`, the
 * default: on the CPU here the cuts below saved ~10% of the FLOPs but not measurably time), by
 * the backward's cost from the model's shapes (`cost`: the same cuts every time, so a trace is
 * reproducible), by the batch times fitted so far (`timed`: the device's own costs, but cuts
 * that vary from run to run, and so the graph at rounding level), or wherever the position
 * changes (`positions`: no cost per run).
 */
export function batchCuts(): BatchCuts {
  const v = process.env.CIRCUIT_BATCH_CUTS ?? 'fixed';
  if (v === 'cost' || v === 'timed' || v === 'fixed' || v === 'positions') return v;
  throw new EngineError(
    'argument',
    `CIRCUIT_BATCH_CUTS is cost, timed, fixed or positions, got ${v.slice(0, 40)}`,
    { field: 'CIRCUIT_BATCH_CUTS' },
  );
}

/**
 * FLOPs one byte of weights read costs in time: a run reads (and a CPU's GEMM packs) each
 * layer's backward weights once whatever its batch, its rows multiply them. Memory alone is
 * worth ~10–30 FLOPs a byte on CPUs and GPUs; smaller products also run less efficiently, so
 * more is charged. A guess, not a calibration: on the 2-core CPU here, cuts made with 16 and 48
 * both traded their FLOPs saved for efficiency lost (README); `timed` fits the device instead.
 */
const FLOPS_PER_WEIGHT_BYTE = 32;

/**
 * The backward's cost by shape (FLOP-equivalents), per layer a run reaches: its float32 value
 * and output projections (and W_skip) read once a run; per row and position, those projections'
 * multiply-adds, the source contraction (mean block width) and W_skip's; per row and pair of
 * positions, the attention mixing. (bench/trace-flops.ts counts the same products.)
 */
export function backwardCostModel(s: {
  nLayers: number;
  d: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  meanBlockWidth: number;
  skip: boolean;
}): BatchCostModel {
  const { d } = s;
  const projection = d * (s.nHeads + s.nKvHeads) * s.headDim + (s.skip ? d * d : 0);
  const perLayer = 4 * projection * FLOPS_PER_WEIGHT_BYTE;
  const perRowPosition = 2 * projection + 2 * d * s.meanBlockWidth;
  const perRowPositionPair = 2 * s.nHeads * s.headDim;
  // BatchCostModel scales the per-layer and per-row terms by 1/L (they are per layer here).
  const L = s.nLayers;
  return new BatchCostModel(0, perLayer * L, perRowPosition * L, perRowPositionPair * L, L);
}

/**
 * Batches of a round, sorted by position (stable), cut to minimise their total cost. Each batch
 * describes itself as planBatches does (rows, positions, depth with layers, meanDepth with live
 * rows, pairLayers with live positions); consecutive batches take consecutive targets of the
 * sorted order. With live positions a cut saves only the attention's mixing (quadratic in t),
 * not the projections: they already skip each row's positions past its own.
 */
export function planBatchesByCost(
  positions: readonly number[],
  batchSize: number,
  layers: readonly number[],
  work: RowWork,
  cost: BatchCostModel,
  minRows = Math.ceil(batchSize / 4),
): PlannedBatch[] {
  const n = positions.length;
  if (n === 0) return [];
  const order = Array.from(positions.keys()).sort((a, b) => positions[a] - positions[b] || a - b);
  const pos = order.map((i) => positions[i]);
  const lay = order.map((i) => layers[i]);
  // Over the first k sorted targets: depthSum Σ (layer + 1) (with live rows, a batch's work),
  // pairSum Σ (layer + 1)·(position + 1) and positionSum Σ (position + 1) (with live positions).
  const depthSum = new Float64Array(n + 1);
  const pairSum = new Float64Array(n + 1);
  const positionSum = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) {
    depthSum[k + 1] = depthSum[k] + lay[k] + 1;
    pairSum[k + 1] = pairSum[k] + (lay[k] + 1) * (pos[k] + 1);
    positionSum[k + 1] = positionSum[k] + pos[k] + 1;
  }
  const lo = n < minRows ? n : Math.min(minRows, batchSize);
  // best[j]: least cost of the first j targets; from[j]: where its last batch starts.
  const best = new Float64Array(n + 1).fill(Number.POSITIVE_INFINITY);
  const from = new Int32Array(n + 1).fill(-1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    const t = pos[j - 1] + 1;
    let top = -1;
    for (let i = j - 1; i >= Math.max(0, j - batchSize); i--) {
      top = Math.max(top, lay[i]);
      if (j - i < lo || !Number.isFinite(best[i])) continue;
      // Without live rows every row runs through the batch's top layer.
      const rowLayers = work.liveRows ? depthSum[j] - depthSum[i] : (j - i) * (top + 1);
      const pairLayers = !work.livePositions
        ? undefined
        : work.liveRows
          ? pairSum[j] - pairSum[i]
          : (top + 1) * (positionSum[j] - positionSum[i]);
      const c = best[i] + cost.cost(top + 1, rowLayers, t, pairLayers);
      // (on a tie the larger batch, found later, wins: no split that saves nothing)
      if (c <= best[j]) {
        best[j] = c;
        from[j] = i;
      }
    }
  }
  if (from[n] < 0) throw new Error(`no batching of ${n} targets in batches of ${lo}..${batchSize}`);
  const cuts: number[] = [];
  for (let j = n; j > 0; j = from[j]) cuts.push(j);
  cuts.reverse();
  // Each batch described by planBatches, as one batch of its rows.
  return cuts.map((j, c) => {
    const i = c === 0 ? 0 : cuts[c - 1];
    return planBatches(pos.slice(i, j), j - i, lay.slice(i, j), work)[0];
  });
}
