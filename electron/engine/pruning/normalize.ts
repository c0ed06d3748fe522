/**
 * Row normalization of the adjacency (attribution.md §5): Â = |A| with each row divided by
 * its sum. Sums are accumulated in float64 (float32 sums over ~10k large entries can lose
 * precision or overflow); a row whose sum is zero stays zero.
 */
import { EngineError } from '../errors.ts';

export function checkSquare(A: ArrayLike<number>, N: number, field = 'adjacency'): void {
  if (!Number.isSafeInteger(N) || N < 0) {
    throw new EngineError('argument', `node count must be a non-negative integer, got ${N}`, { field });
  }
  if (A.length !== N * N) {
    throw new EngineError('shape', `expected an [${N}, ${N}] matrix (${N * N} entries), got ${A.length}`, {
      field,
    });
  }
}

/**
 * Σ_j |A[i, j]| for every row, in float64. Throws an EngineError naming the row when an
 * entry is NaN or ±Infinity (a non-finite entry would silently poison every influence).
 */
export function absRowSums(A: Float32Array, N: number): Float64Array {
  checkSquare(A, N);
  const sums = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const base = i * N;
    let s = 0;
    for (let j = 0; j < N; j++) s += Math.abs(A[base + j]);
    if (!Number.isFinite(s)) {
      // s is +Infinity or NaN: some entry is non-finite (finite float32s cannot overflow a float64 sum).
      let j = 0;
      while (j < N && Number.isFinite(A[base + j])) j++;
      throw new EngineError('argument', `adjacency entry [${i}, ${j}] is not finite (${A[base + j]})`, {
        field: 'adjacency',
      });
    }
    sums[i] = s;
  }
  return sums;
}

/** 1 / rowSum for non-zero rows, 0 for zero rows. */
export function inverseRowScale(sums: Float64Array): Float64Array {
  const scale = new Float64Array(sums.length);
  for (let i = 0; i < sums.length; i++) scale[i] = sums[i] > 0 ? 1 / sums[i] : 0;
  return scale;
}

/**
 * Â = |A| / rowsum. Returns a Float32Array: entries lie in [0, 1], where float32's 24-bit
 * mantissa is ample (relative error 6e-8, far below anything pruning can resolve), and a
 * float64 copy of a 10k-node graph would cost 800 MB instead of 400 MB. Each entry is
 * computed in float64 and rounded once.
 */
export function normalizeAdjacency(A: Float32Array, N: number): Float32Array {
  const scale = inverseRowScale(absRowSums(A, N));
  const out = new Float32Array(N * N);
  for (let i = 0; i < N; i++) {
    const c = scale[i];
    if (c === 0) continue;
    const base = i * N;
    for (let j = 0; j < N; j++) out[base + j] = Math.abs(A[base + j]) * c;
  }
  return out;
}
