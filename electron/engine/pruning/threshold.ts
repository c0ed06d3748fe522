/**
 * Cumulative-share selection, shared by node and edge pruning (attribution.md §5).
 *
 * Definitions fixed here (the docs leave them open):
 * - Ranking: scores descending; equal scores are ordered by index ascending (a stable sort),
 *   so the ranking, and everything derived from it, is deterministic.
 * - Share at rank r: (Σ of the first r+1 ranked scores) / total, both summed in float64 in
 *   rank order, so the last positive score has share exactly 1.
 * - "Reaches the threshold": keep the smallest prefix of the ranking whose cumulative share
 *   is ≥ threshold. Equivalently, the item at rank r is kept iff the share of the items ranked
 *   strictly before it is < threshold. threshold 0 keeps nothing, threshold 1 keeps every item
 *   up to the last positive score; items with score 0 are never kept (for threshold ≤ 1);
 *   when the total is 0 nothing is kept.
 *
 * circuit-tracer's `find_threshold` differs only on exact ties at the boundary: it turns the
 * prefix into a score cut-off and keeps every item whose score equals the boundary score
 * (and, at threshold 0, it keeps the top item); here ties are broken by index.
 */

/** Indices sorted by score descending, ties by index ascending. */
export function rankDescending(scores: ArrayLike<number>): Int32Array {
  const n = scores.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => {
    const d = scores[b] - scores[a];
    return d !== 0 ? d : a - b;
  });
  return order;
}

export interface Ranking {
  /** order[r] = index at rank r. */
  order: Int32Array;
  /** rankOf[i] = rank of index i. */
  rankOf: Int32Array;
  /** share[i] = cumulative share of index i at its rank (inclusive); 1 everywhere when the total is 0. */
  share: Float64Array;
  /** Σ of all scores, summed in rank order. */
  total: number;
}

/** Ranking and per-index cumulative shares. */
export function rankWithShares(scores: ArrayLike<number>): Ranking {
  const n = scores.length;
  const order = rankDescending(scores);
  const rankOf = new Int32Array(n);
  const cum = new Float64Array(n);
  let run = 0;
  for (let r = 0; r < n; r++) {
    rankOf[order[r]] = r;
    run += scores[order[r]];
    cum[r] = run;
  }
  const total = run;
  const share = new Float64Array(n);
  for (let r = 0; r < n; r++) share[order[r]] = total > 0 ? cum[r] / total : 1;
  return { order, rankOf, share, total };
}

/**
 * Length of the smallest prefix of `ranking` whose cumulative share is ≥ threshold
 * (0 when threshold ≤ 0 or the total is 0).
 */
export function prefixLength(ranking: Ranking, threshold: number): number {
  if (!(threshold > 0) || !(ranking.total > 0)) return 0;
  const { order, share } = ranking;
  for (let r = 0; r < order.length; r++) if (share[order[r]] >= threshold) return r + 1;
  return order.length;
}

/**
 * The same selection for a large set of positive scores without a comparator sort: returns
 * the boundary score τ and how many items equal to τ belong to the prefix (they are the
 * first ones in index order). An item is kept iff score > τ, or score == τ and it is among
 * the first `tiesKept` such items in index order. `keepNone` when nothing is kept.
 */
export interface ScoreCut {
  keepNone: boolean;
  tau: number;
  tiesKept: number;
  kept: number;
}

export function cutForShare(positiveScores: Float64Array, threshold: number): ScoreCut {
  const n = positiveScores.length;
  const none: ScoreCut = { keepNone: true, tau: Number.POSITIVE_INFINITY, tiesKept: 0, kept: 0 };
  if (n === 0 || !(threshold > 0)) return none;
  const sorted = Float64Array.from(positiveScores).sort(); // ascending, numeric
  let total = 0;
  for (let q = n - 1; q >= 0; q--) total += sorted[q];
  if (!(total > 0)) return none;
  let run = 0;
  let k = 0;
  for (let q = n - 1; q >= 0; q--) {
    run += sorted[q];
    k++;
    if (run / total >= threshold) break;
  }
  const tau = sorted[n - k];
  // Items strictly greater than tau: those after the last index holding tau in ascending order.
  let hi = n - k;
  while (hi + 1 < n && sorted[hi + 1] === tau) hi++;
  const above = n - 1 - hi;
  return { keepNone: false, tau, tiesKept: k - above, kept: k };
}
