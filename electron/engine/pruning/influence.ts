/**
 * Influence of every node on the logits (attribution.md §5):
 *
 *   inf = wᵀ (Â + Â² + Â³ + …)
 *
 * with w the logit probabilities on the logit entries and 0 elsewhere. Computed as
 * v₀ = w, v_{k+1} = v_k · Â, inf = Σ_{k≥1} v_k, stopping when v is exactly zero.
 *
 * Why v reaches exactly zero. The index layout [features | errors | tokens | logits] is not
 * triangular (errors come after the features they feed, logits are targets but sit last),
 * so nothing is read off the order. What matters is that Â is entrywise non-negative and its
 * non-zero pattern is a DAG: v_k[j] > 0 iff some walk of length k runs from a weighted logit
 * to j through non-zero entries (a sum of non-negative terms is 0 only if every term is 0, so
 * nothing cancels and zero stays exactly zero; underflow can only zero more entries). A DAG on
 * N nodes has no walk longer than N−1 edges, so Â is nilpotent and v_N = 0 exactly, whatever
 * the index order. In practice v dies after (longest path + 1) steps, about n_layers + 2. If v
 * is still non-zero after N steps the matrix has a cycle: that is reported as an error rather
 * than looping.
 *
 * Cost: v·Â is a dense vector–matrix product, but only rows i with v_i ≠ 0 and a non-zero row
 * contribute (error and token rows are always zero), so each step is
 * Σ_{active i} (row i axpy) over row-major memory, four rows per sweep of the output to cut
 * memory traffic. Everything is accumulated in float64.
 */
import { EngineError } from '../errors.ts';
import { checkSquare } from './normalize.ts';

/** Checks the shapes and the logit weights (finite, ≥ 0); returns the weights as float64. */
function checkedInfluenceInputs(
  M: Float32Array,
  N: number,
  rowScale: Float64Array,
  logitWeights: ArrayLike<number>,
): Float64Array {
  checkSquare(M, N);
  if (rowScale.length !== N || logitWeights.length !== N) {
    throw new EngineError('shape', `row scale / logit weights must have ${N} entries`, {
      field: 'logitWeights',
    });
  }
  const w = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const x = logitWeights[i];
    if (!Number.isFinite(x) || x < 0) {
      throw new EngineError('argument', `logit weight ${i} must be finite and >= 0, got ${x}`, {
        field: 'logitWeights',
      });
    }
    w[i] = x;
  }
  return w;
}

/**
 * Core: influence for Â[i, j] = rowScale[i] · |M[i, j]| (rows with rowScale 0 are zero),
 * optionally restricted to the columns with keepColumn[j] = 1 (others treated as zero).
 * `M` may be the raw adjacency (rowScale = 1/Σ|A[i,:]|), which spares materializing Â.
 */
export function influenceFromScaledRows(
  M: Float32Array,
  N: number,
  rowScale: Float64Array,
  logitWeights: ArrayLike<number>,
  keepColumn?: Uint8Array,
): Float64Array {
  let v: Float64Array = checkedInfluenceInputs(M, N, rowScale, logitWeights);
  const inf = new Float64Array(N);
  if (!v.some((x) => x !== 0)) return inf;
  let next: Float64Array = new Float64Array(N);
  const active = new Int32Array(N);
  const coef = new Float64Array(N);
  for (let step = 0; step < N; step++) {
    // Rows that contribute to v · Â.
    let nAct = 0;
    for (let i = 0; i < N; i++) {
      const c = v[i] * rowScale[i];
      if (c !== 0) {
        active[nAct] = i;
        coef[nAct] = c;
        nAct++;
      }
    }
    if (nAct === 0) return inf;
    next.fill(0);
    let a = 0;
    for (; a + 4 <= nAct; a += 4) {
      const b0 = active[a] * N;
      const b1 = active[a + 1] * N;
      const b2 = active[a + 2] * N;
      const b3 = active[a + 3] * N;
      const c0 = coef[a];
      const c1 = coef[a + 1];
      const c2 = coef[a + 2];
      const c3 = coef[a + 3];
      for (let j = 0; j < N; j++) {
        next[j] +=
          c0 * Math.abs(M[b0 + j]) +
          c1 * Math.abs(M[b1 + j]) +
          c2 * Math.abs(M[b2 + j]) +
          c3 * Math.abs(M[b3 + j]);
      }
    }
    for (; a < nAct; a++) {
      const b0 = active[a] * N;
      const c0 = coef[a];
      for (let j = 0; j < N; j++) next[j] += c0 * Math.abs(M[b0 + j]);
    }
    if (keepColumn) {
      for (let j = 0; j < N; j++) if (keepColumn[j] === 0) next[j] = 0;
    }
    let nonzero = false;
    for (let j = 0; j < N; j++) {
      const x = next[j];
      if (x !== 0) {
        inf[j] += x;
        nonzero = true;
      }
    }
    if (!nonzero) return inf;
    const t = v;
    v = next;
    next = t;
  }
  throw new EngineError(
    'argument',
    `influence did not vanish after ${N} steps: the adjacency has a cycle (it must be a DAG)`,
    { field: 'adjacency' },
  );
}

/**
 * The same series in one pass, for a DAG: x = inf + w is the unique solution of
 * x = w + x·Â, so processing nodes in a topological order (every target before its sources;
 * Kahn's algorithm on the non-zero pattern) and adding x_i·Â[i, :] once x_i is final gives the
 * sum of all walks of every length. Each non-zero row is read twice (count, then propagate)
 * instead of once per step of the iteration, about n_layers / 2 times less work on
 * attribution graphs. Sums are float64 but in a different order than the iteration (they agree
 * to ~1e-15 relative). If the pattern has a cycle anywhere, falls back to the iteration, which
 * reports a cycle only when it is reachable from the logits.
 */
export function influenceByTopologicalPass(
  M: Float32Array,
  N: number,
  rowScale: Float64Array,
  logitWeights: ArrayLike<number>,
  keepColumn?: Uint8Array,
): Float64Array {
  const w = checkedInfluenceInputs(M, N, rowScale, logitWeights);
  // pending[j] = number of contributing rows i with Â[i, j] != 0 not processed yet.
  const pending = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    if (rowScale[i] === 0) continue;
    const base = i * N;
    for (let j = 0; j < N; j++) if (M[base + j] !== 0) pending[j]++;
  }
  if (keepColumn) for (let j = 0; j < N; j++) if (keepColumn[j] === 0) pending[j] = 0;
  const inf = new Float64Array(N);
  const stack = new Int32Array(N);
  let top = 0;
  for (let j = N - 1; j >= 0; j--) if (pending[j] === 0) stack[top++] = j;
  let done = 0;
  while (top > 0) {
    const i = stack[--top];
    done++;
    const sc = rowScale[i];
    if (sc === 0) continue;
    const c = (inf[i] + w[i]) * sc;
    const base = i * N;
    for (let j = 0; j < N; j++) {
      const a = M[base + j];
      if (a === 0 || (keepColumn !== undefined && keepColumn[j] === 0)) continue;
      inf[j] += c * Math.abs(a);
      if (--pending[j] === 0) stack[top++] = j;
    }
  }
  if (done < N) return influenceFromScaledRows(M, N, rowScale, logitWeights, keepColumn);
  return inf;
}

/**
 * inf = wᵀ(Â + Â² + …) for an already row-normalized Â (entries finite and >= 0).
 * `logitWeights` has N entries: the logit probabilities on the logit nodes, 0 elsewhere.
 * Returns float64 influences (the series itself, without + w).
 */
export function computeInfluence(
  Ahat: Float32Array,
  N: number,
  logitWeights: ArrayLike<number>,
): Float64Array {
  checkSquare(Ahat, N, 'Ahat');
  const rowScale = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const base = i * N;
    let nz = false;
    for (let j = 0; j < N; j++) {
      const x = Ahat[base + j];
      if (!(x >= 0) || x === Number.POSITIVE_INFINITY) {
        throw new EngineError(
          'argument',
          `normalized adjacency entry [${i}, ${j}] must be finite and >= 0, got ${x}`,
          {
            field: 'Ahat',
          },
        );
      }
      if (x !== 0) nz = true;
    }
    rowScale[i] = nz ? 1 : 0;
  }
  return influenceFromScaledRows(Ahat, N, rowScale, logitWeights);
}
