/**
 * Graph scores (attribution.md §5, as circuit-tracer's `compute_graph_scores`), computed on
 * the unpruned matrix:
 *
 *   replacement  = token influence / (token influence + error influence)
 *   completeness = Σ_i (1 − errFrac_i)(inf_i + w_i) / Σ_i (inf_i + w_i),
 *                  errFrac_i = Σ_{s ∈ errors} Â[i, s]  (0 for zero rows)
 *
 * where inf is the node influence on the unpruned Â. The sums run over all nodes (zero rows,
 * e.g. error and token nodes, count with errFrac 0, as in circuit-tracer). A 0/0 ratio (no
 * influence at all) is reported as 0.
 */
import type { NodeLayout, RawAttributionGraph } from '../attribution/graph-types.ts';
import { nodeLayout } from '../attribution/graph-types.ts';
import { influenceByTopologicalPass } from './influence.ts';
import { absRowSums, inverseRowScale } from './normalize.ts';

export interface GraphScores {
  replacementScore: number;
  completenessScore: number;
}

/** w: the logit probabilities on the logit entries, 0 elsewhere (float64, length N). */
export function logitWeights(
  raw: RawAttributionGraph,
  layout: NodeLayout = nodeLayout(raw.nodes),
): Float64Array {
  const w = new Float64Array(layout.total);
  const p = raw.nodes.logits.probability;
  for (let k = 0; k < layout.nLogits; k++) w[layout.logitOffset + k] = p[k];
  return w;
}

/** Scores from precomputed pieces: A raw, rowScale = 1/Σ|A[i,:]| (0 for zero rows), inf on Â. */
export function graphScoresFrom(
  A: Float32Array,
  layout: NodeLayout,
  rowScale: Float64Array,
  influence: Float64Array,
  w: Float64Array,
): GraphScores {
  const N = layout.total;
  let tokenInf = 0;
  for (let i = layout.tokenOffset; i < layout.logitOffset; i++) tokenInf += influence[i];
  let errorInf = 0;
  for (let i = layout.errorOffset; i < layout.tokenOffset; i++) errorInf += influence[i];
  let num = 0;
  let den = 0;
  for (let i = 0; i < N; i++) {
    const out = influence[i] + w[i];
    let errFrac = 0;
    const sc = rowScale[i];
    if (sc !== 0) {
      const base = i * N;
      let s = 0;
      for (let j = layout.errorOffset; j < layout.tokenOffset; j++) s += Math.abs(A[base + j]);
      errFrac = s * sc;
    }
    num += (1 - errFrac) * out;
    den += out;
  }
  const replacementScore = tokenInf + errorInf > 0 ? tokenInf / (tokenInf + errorInf) : 0;
  const completenessScore = den > 0 ? num / den : 0;
  return { replacementScore, completenessScore };
}

/** Replacement and completeness scores of a raw graph. */
export function computeGraphScores(raw: RawAttributionGraph): GraphScores {
  const layout = nodeLayout(raw.nodes);
  const rowScale = inverseRowScale(absRowSums(raw.adjacency, layout.total));
  const w = logitWeights(raw, layout);
  const inf = influenceByTopologicalPass(raw.adjacency, layout.total, rowScale, w);
  return graphScoresFrom(raw.adjacency, layout, rowScale, inf, w);
}
