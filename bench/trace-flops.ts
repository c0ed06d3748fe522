/**
 * FLOP model of the engine's backward graph (electron/engine/attribution/linear-model.ts,
 * `emitBackwardGraph`), counted from its matrix products only, for one batch of B targets
 * run over the first t positions (linear-runner.ts feeds only positions < t, where t − 1 is
 * the batch's last target position) and, for a batch of feature targets only, the layers up to
 * the highest one its targets read at (`top`). Per layer l, from the top down:
 *
 *   contraction  MatMul [t, B, d] · [t, d, n_l]          2·t·B·d·n_l   (n_l: padded block width)
 *   skip         MatMul [B, t, d] · W_skip [d, d]        2·B·t·d²      (PLT layers with W_skip)
 *   output proj  Gemm [B·t, d] · W_o [d, H·hd]           2·B·t·d·H·hd
 *   pattern      MatMul Pᵀ [H, t, t] · [B, H, t, hd]     2·B·H·t²·hd   (dense: masked zeros count)
 *   value proj   Gemm [B·t, KV·hd] · W_v [KV·hd, d]      2·B·t·KV·hd·d
 *
 * The token contraction (Mul + ReduceSum, 2·B·t·d) and every norm, injection, add and
 * transpose are elementwise or layout ops: memory traffic, not counted as FLOPs.
 *
 * With live rows (the runner's default) B above is, per layer, only the targets reading above
 * that point: attention at layer l runs on those reading at slot ≥ 2l + 1, the contraction at
 * l on those at slot ≥ 2l + 2 (`slots` given); without, every target of the batch. With live
 * positions (also the default: `positions` given) the projections' B·t is, per layer, the live
 * (position, row) pairs of those rows, Σ (position + 1); the contraction and the pattern stay
 * dense over t.
 */

export interface BackwardShape {
  nLayers: number;
  d: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Per write layer: the padded source block width n_l (columns per position). */
  blockWidth: number[];
  /** Per layer: whether the backward graph has a W_skip MatMul there. */
  skip: boolean[];
}

export interface BatchShape {
  /** Targets in the batch. */
  B: number;
  /** Positions the batch runs over (its last target position + 1). */
  t: number;
  /**
   * The backward graph's top layer (linear-model.ts `backwardTop`): nLayers (or absent) when
   * a logit target is in the batch, else the highest layer its targets read at. A graph with
   * top < L runs layers 0..top's attention and contracts layers below top only.
   */
  top?: number;
  /** The targets' injection slots, when the run computed live rows only (else all B at every layer). */
  slots?: readonly number[];
  /** The targets' positions (same order), when the projections ran on live positions only (else all t). */
  positions?: readonly number[];
}

export interface FlopBreakdown {
  contraction: number;
  skip: number;
  outputProj: number;
  pattern: number;
  valueProj: number;
  total: number;
}

export const ZERO_FLOPS: FlopBreakdown = {
  contraction: 0,
  skip: 0,
  outputProj: 0,
  pattern: 0,
  valueProj: 0,
  total: 0,
};

export function batchFlops(
  s: BackwardShape,
  { B, t, top = s.nLayers, slots, positions }: BatchShape,
): FlopBreakdown {
  const { d, nHeads: H, nKvHeads: KV, headDim: hd } = s;
  /** Targets computed from slot `from` down: those reading at it or above (live rows), else all. */
  const rowsFrom = (from: number) => (slots ? slots.filter((x) => x >= from).length : B);
  /** (position, row) pairs the projections run on from slot `from` down (live positions), else rows × t. */
  const pairsFrom = (from: number) =>
    positions
      ? positions.reduce((n, p, i) => n + (!slots || slots[i] >= from ? p + 1 : 0), 0)
      : rowsFrom(from) * t;
  let contraction = 0;
  let skip = 0;
  const contracted = Math.min(top, s.nLayers);
  for (let l = 0; l < contracted; l++) {
    const rows = rowsFrom(2 * l + 2);
    contraction += 2 * t * rows * d * s.blockWidth[l];
    if (s.skip[l]) skip += 2 * rows * t * d * d;
  }
  let outputProj = 0;
  let pattern = 0;
  let valueProj = 0;
  for (let l = 0; l <= Math.min(top, s.nLayers - 1); l++) {
    const rows = rowsFrom(2 * l + 1); // attention layers run
    const pairs = pairsFrom(2 * l + 1);
    outputProj += 2 * pairs * d * H * hd;
    pattern += 2 * rows * H * t * t * hd;
    valueProj += 2 * pairs * KV * hd * d;
  }
  return {
    contraction,
    skip,
    outputProj,
    pattern,
    valueProj,
    total: contraction + skip + outputProj + pattern + valueProj,
  };
}

export function addFlops(a: FlopBreakdown, b: FlopBreakdown): FlopBreakdown {
  return {
    contraction: a.contraction + b.contraction,
    skip: a.skip + b.skip,
    outputProj: a.outputProj + b.outputProj,
    pattern: a.pattern + b.pattern,
    valueProj: a.valueProj + b.valueProj,
    total: a.total + b.total,
  };
}

export function sumFlops(s: BackwardShape, batches: readonly BatchShape[]): FlopBreakdown {
  return batches.reduce((acc, b) => addFlops(acc, batchFlops(s, b)), ZERO_FLOPS);
}

/**
 * Matrix-product FLOPs of one ONNX Runtime profile node, from its input and output shapes.
 * The profile lists only inputs that are not initializers: a Gemm or MatMul against a
 * weight shows one input shape.
 */
export function nodeMatmulFlops(op: string, inputs: number[][], output: number[] | undefined): number {
  if (!output || output.length < 2 || inputs.length < 1) return 0;
  const prod = (xs: number[]) => xs.reduce((x, y) => x * y, 1);
  const M = output[output.length - 2];
  const N = output[output.length - 1];
  const [a, b] = inputs;
  if (op === 'Gemm' || op === 'FusedGemm') {
    if (a.length !== 2) return 0;
    return 2 * M * N * (a[0] === M ? a[1] : a[0]);
  }
  if (op === 'MatMul' || op === 'FusedMatMul') {
    // K from an operand that is not broadcast over the output's batch dims (either may be
    // stored transposed when ORT fused a Transpose into the product).
    const batch = prod(output.slice(0, -2));
    let K = a[a.length - 1];
    if (a.length >= 2 && prod(a.slice(0, -2)) === batch) K = prod(a) / (batch * M);
    else if (b && b.length >= 2 && prod(b.slice(0, -2)) === batch) K = prod(b) / (batch * N);
    return 2 * batch * M * N * K;
  }
  return 0;
}
