import { EngineError } from '../errors.ts';

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
 * The same selection for a large set of positive scores (edges: up to tens of millions)
 * without sorting them all: returns the boundary score τ and how many items equal to τ
 * belong to the prefix (the first ones in index order). An item is kept iff score > τ, or
 * score == τ and it is among the first `tiesKept` such items in index order.
 *
 * Method: positive doubles order like their bit patterns, so items are bucketed by the top
 * 20 bits of the pattern (sign, exponent, 8 mantissa bits: buckets 0.27 % wide). Bucket masses
 * are summed from the largest bucket down until the bucket holding the boundary is found; only
 * that bucket's items are sorted and walked. Cumulative sums are float64, accumulated bucket by
 * bucket (so they can differ from a strictly rank-ordered sum in the last bits, which only
 * matters for an item whose share is within ~1e-15 of the threshold).
 */
export interface ScoreCut {
  keepNone: boolean;
  tau: number;
  tiesKept: number;
  kept: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const BUCKET_SHIFT = 12;
const N_BUCKETS = 1 << (32 - BUCKET_SHIFT - 1); // sign bit is 0 for positive scores

export function cutForShare(positiveScores: Float64Array, threshold: number): ScoreCut {
  const n = positiveScores.length;
  const none: ScoreCut = { keepNone: true, tau: Number.POSITIVE_INFINITY, tiesKept: 0, kept: 0 };
  if (n === 0 || !(threshold > 0)) return none;
  const scores = positiveScores.byteOffset % 8 === 0 ? positiveScores : Float64Array.from(positiveScores);
  for (let i = 0; i < n; i++) {
    if (!(scores[i] > 0) || scores[i] === Number.POSITIVE_INFINITY) {
      throw new EngineError('argument', `score ${i} is not finite and positive (${scores[i]})`, {
        field: 'scores',
      });
    }
  }
  const words = new Uint32Array(scores.buffer, scores.byteOffset, 2 * n);
  const hiOff = LITTLE_ENDIAN ? 1 : 0;
  let kMin = N_BUCKETS;
  let kMax = -1;
  for (let i = 0; i < n; i++) {
    const k = words[2 * i + hiOff] >>> BUCKET_SHIFT;
    if (k < kMin) kMin = k;
    if (k > kMax) kMax = k;
  }
  // Buckets kMin..kMax, stored at k - kMin.
  const nb = kMax - kMin + 1;
  const mass = new Float64Array(nb);
  const count = new Int32Array(nb);
  for (let i = 0; i < n; i++) {
    const k = (words[2 * i + hiOff] >>> BUCKET_SHIFT) - kMin;
    mass[k] += scores[i];
    count[k]++;
  }
  let total = 0;
  for (let k = nb - 1; k >= 0; k--) total += mass[k];
  if (!(total > 0)) return none;
  let run = 0;
  let above = 0; // items in buckets above the current one
  let k = nb - 1;
  for (; k >= 0; k--) {
    if (count[k] === 0) continue;
    if ((run + mass[k]) / total >= threshold) break;
    run += mass[k];
    above += count[k];
  }
  if (k < 0) {
    // Rounding left the threshold unreached by whole buckets: walk items from the top.
    k = nb - 1;
    run = 0;
    above = 0;
  }
  // Walk items bucket by bucket from bucket k down, sorted within each bucket.
  let lastTau = 0;
  let lastTies = 0;
  for (; k >= 0; k--) {
    if (count[k] === 0) continue;
    const items = new Float64Array(count[k]);
    const key = k + kMin;
    for (let i = 0, q = 0; i < n; i++)
      if (words[2 * i + hiOff] >>> BUCKET_SHIFT === key) items[q++] = scores[i];
    items.sort();
    for (let q = items.length - 1; q >= 0; q--) {
      const v = items[q];
      run += v;
      if (v === lastTau) lastTies++;
      else {
        lastTau = v;
        lastTies = 1;
      }
      if (run / total >= threshold) {
        const kept = above + (items.length - q);
        return { keepNone: false, tau: v, tiesKept: lastTies, kept };
      }
    }
    above += items.length;
  }
  // Threshold never reached (t = 1 with rounding): keep everything.
  return { keepNone: false, tau: lastTau, tiesKept: lastTies, kept: n };
}
