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
/** Items gathered per pass of the boundary walk (8 bytes each). */
const WALK_ITEMS = 1 << 22;
const scratch = new Float64Array(1);
const scratchWords = new Uint32Array(scratch.buffer);
const HI = LITTLE_ENDIAN ? 1 : 0;

/** Bucket of a positive score: the top 20 bits of its float64 pattern. */
function bucketOf(score: number): number {
  scratch[0] = score;
  return scratchWords[HI] >>> BUCKET_SHIFT;
}

/**
 * Positive scores produced on demand: `forEach` calls `visit` with every score, always in
 * the same order (the index order). Lets the edge cut run over scores that are recomputed
 * instead of stored (pruning: one score per nonzero entry of the node-pruned matrix).
 */
export type ScoreStream = (visit: (score: number) => void) => void;

export function cutForShare(positiveScores: Float64Array, threshold: number): ScoreCut {
  return cutForShareStream((visit) => {
    for (let i = 0; i < positiveScores.length; i++) visit(positiveScores[i]);
  }, threshold);
}

/**
 * cutForShare over a stream of scores: the same result, holding only the bucket masses and
 * the boundary bucket's items (the stream is read two or three times).
 */
export function cutForShareStream(scores: ScoreStream, threshold: number): ScoreCut {
  const none: ScoreCut = { keepNone: true, tau: Number.POSITIVE_INFINITY, tiesKept: 0, kept: 0 };
  if (!(threshold > 0)) return none;
  const mass = new Float64Array(N_BUCKETS);
  const count = new Float64Array(N_BUCKETS);
  let n = 0;
  let kMin = N_BUCKETS;
  let kMax = -1;
  scores((score) => {
    if (!(score > 0) || score === Number.POSITIVE_INFINITY) {
      throw new EngineError('argument', `score ${n} is not finite and positive (${score})`, {
        field: 'scores',
      });
    }
    const k = bucketOf(score);
    mass[k] += score;
    count[k]++;
    if (k < kMin) kMin = k;
    if (k > kMax) kMax = k;
    n++;
  });
  if (n === 0) return none;
  let total = 0;
  for (let k = kMax; k >= kMin; k--) total += mass[k];
  if (!(total > 0)) return none;
  let run = 0;
  let above = 0; // items in buckets above the current one
  let k = kMax;
  for (; k >= kMin; k--) {
    if (count[k] === 0) continue;
    if ((run + mass[k]) / total >= threshold) break;
    run += mass[k];
    above += count[k];
  }
  if (k < kMin) {
    // Rounding left the threshold unreached by whole buckets: walk items from the top.
    k = kMax;
    run = 0;
    above = 0;
  }
  // Walk items from bucket k down in descending order (bucket by bucket, sorted within each).
  // The first pass gathers the boundary bucket (the threshold is almost always reached in it);
  // each later pass a run of consecutive buckets, up to WALK_ITEMS items (or one whole bucket),
  // so a tail of tiny scores costs a few passes, not one per bucket.
  let lastTau = 0;
  let lastTies = 0;
  let first = true;
  while (k >= kMin) {
    let lo = k;
    let m = count[k];
    while (!first && lo - 1 >= kMin && m + count[lo - 1] <= WALK_ITEMS) m += count[--lo];
    first = false;
    const items = new Float64Array(m);
    let q = 0;
    const [from, to] = [lo, k];
    scores((score) => {
      const b = bucketOf(score);
      if (b >= from && b <= to) items[q++] = score;
    });
    items.sort();
    for (let i = items.length - 1; i >= 0; i--) {
      const v = items[i];
      run += v;
      if (v === lastTau) lastTies++;
      else {
        lastTau = v;
        lastTies = 1;
      }
      if (run / total >= threshold) {
        const kept = above + (items.length - i);
        return { keepNone: false, tau: v, tiesKept: lastTies, kept };
      }
    }
    above += items.length;
    k = lo - 1;
  }
  // Threshold never reached (t = 1 with rounding): keep everything.
  return { keepNone: false, tau: lastTau, tiesKept: lastTies, kept: n };
}
