/**
 * Pruning (attribution.md §5, following circuit-tracer's `prune_graph`):
 *
 * 1. Node influence on the unpruned Â; rank all nodes (tokens and logits included, as
 *    circuit-tracer does, so they count in the cumulative share) and keep, among feature and
 *    error nodes, those in the smallest prefix whose cumulative share ≥ nodeThreshold (see
 *    threshold.ts for tie-breaking). Tokens, logits and pinned nodes are always kept.
 * 2. Edge scores on the node-pruned matrix P (rows and columns of dropped nodes zeroed):
 *    Â_P row-normalized, inf_P = wᵀ(Â_P + Â_P² + …) + w, score[i, j] = Â_P[i, j]·inf_P[i];
 *    keep the smallest prefix of edges (score descending, ties by row-major index
 *    target·N + source) whose cumulative share ≥ edgeThreshold.
 * 3. Clean-up to a fixed point: a feature or error node needs a kept outgoing edge to a kept
 *    node, a feature node also a kept incoming edge from a kept node; tokens, logits and pinned
 *    nodes are exempt. Computed with a work list, which yields the greatest such set.
 *    Pinned nodes join P in step 1 whatever their influence (so their edges are scored and can
 *    be kept) and are exempt from the clean-up.
 * 4. Each kept node's influence = its cumulative influence share at its rank in step 1
 *    (lower = more important).
 *
 * Monotonicity. For a fixed node threshold the result is monotone in the edge threshold: the
 * kept edges are a prefix of one fixed order, and the clean-up returns the greatest set
 * satisfying conditions that only get easier with more edges, so it can only grow. The node
 * set of step 1 is monotone in the node threshold, but the final set is not: adding nodes to P
 * re-normalizes Â_P and redistributes the edge-score mass, so an edge inside the top
 * edgeThreshold share for a small P can fall outside it for a larger P and its nodes then lose
 * the clean-up. That is inherent to the method (circuit-tracer behaves the same way); the tests
 * pin down a concrete case.
 */
import { DEFAULT_TRACE_SETTINGS } from '../attribution/defaults.ts';
import type { NodeLayout, RawAttributionGraph } from '../attribution/graph-types.ts';
import { nodeLayout } from '../attribution/graph-types.ts';
import { availableBytes, formatBytes, KEPT_EDGE_BYTES } from '../attribution/memory-estimate.ts';
import { EngineError } from '../errors.ts';
import { influenceByTopologicalPass } from './influence.ts';
import { absRowSums, checkSquare, inverseRowScale } from './normalize.ts';
import { graphScoresFrom, logitWeights } from './scores.ts';
import { cutForShareStream, prefixLength, type Ranking, rankWithShares } from './threshold.ts';

export interface PruneOptions {
  /** Cumulative influence share kept among nodes, in [0, 1]. Default: DEFAULT_TRACE_SETTINGS' (0.8). */
  nodeThreshold?: number;
  /** Cumulative score share kept among edges, in [0, 1]. Default: DEFAULT_TRACE_SETTINGS' (0.98). */
  edgeThreshold?: number;
  /** Node indices (raw order) that are always kept and exempt from the clean-up. */
  pinned?: readonly number[];
}

export interface PrunedEdges {
  target: Int32Array;
  source: Int32Array;
  /** The raw signed A[target, source]. */
  weight: Float32Array;
}

export interface PrunedGraph {
  /** Indices into the raw node order, ascending. */
  keptNodes: Int32Array;
  /** Cumulative influence share at each kept node's rank (parallel to keptNodes). */
  nodeInfluence: Float32Array;
  /** Kept edges, ordered by (target, source) ascending. */
  edges: PrunedEdges;
  replacementScore: number;
  completenessScore: number;
  nodeThreshold: number;
  edgeThreshold: number;
}

function checkThreshold(x: number, field: string): void {
  if (typeof x !== 'number' || !(x >= 0 && x <= 1)) {
    throw new EngineError('argument', `${field} must be a number in [0, 1], got ${x}`, { field });
  }
}

function checkNodes(raw: RawAttributionGraph): NodeLayout {
  const n = raw.nodes;
  if (
    !Number.isSafeInteger(n.nLayers) ||
    n.nLayers < 0 ||
    !Number.isSafeInteger(n.nPositions) ||
    n.nPositions < 0
  ) {
    throw new EngineError('argument', 'nLayers and nPositions must be non-negative integers', {
      field: 'nodes',
    });
  }
  const f = n.features;
  const nf = f.layer.length;
  if (f.position.length !== nf || f.index.length !== nf || f.activation.length !== nf) {
    throw new EngineError('shape', 'feature arrays (layer, position, index, activation) differ in length', {
      field: 'nodes.features',
    });
  }
  if (n.logits.probability.length !== n.logits.tokenId.length) {
    throw new EngineError('shape', 'logit probability and tokenId differ in length', {
      field: 'nodes.logits',
    });
  }
  const layout = nodeLayout(n);
  checkSquare(raw.adjacency, layout.total);
  return layout;
}

/** Candidate (feature / error) nodes kept by the node threshold, given the influence ranking. */
export function selectNodes(ranking: Ranking, layout: NodeLayout, nodeThreshold: number): Uint8Array {
  checkThreshold(nodeThreshold, 'nodeThreshold');
  const keep = new Uint8Array(layout.total);
  const k = prefixLength(ranking, nodeThreshold);
  for (let r = 0; r < k; r++) {
    const i = ranking.order[r];
    if (i < layout.tokenOffset) keep[i] = 1;
  }
  return keep;
}

export interface PruneAnalysis {
  layout: NodeLayout;
  /** inf on the unpruned Â (float64, without + w). */
  influence: Float64Array;
  ranking: Ranking;
  logitWeights: Float64Array;
  /** 1 / Σ_j |A[i, j]| (0 for zero rows). */
  rowScale: Float64Array;
}

/** The threshold-independent part of pruning (reuse it when re-pruning at other thresholds). */
export function analyzeGraph(raw: RawAttributionGraph): PruneAnalysis {
  const layout = checkNodes(raw);
  const N = layout.total;
  const w = logitWeights(raw, layout);
  const rowScale = inverseRowScale(absRowSums(raw.adjacency, N));
  const influence = influenceByTopologicalPass(raw.adjacency, N, rowScale, w);
  return { layout, influence, ranking: rankWithShares(influence), logitWeights: w, rowScale };
}

export function pruneGraph(
  raw: RawAttributionGraph,
  options: PruneOptions = {},
  analysis: PruneAnalysis = analyzeGraph(raw),
): PrunedGraph {
  const nodeThreshold = options.nodeThreshold ?? DEFAULT_TRACE_SETTINGS.nodeThreshold;
  const edgeThreshold = options.edgeThreshold ?? DEFAULT_TRACE_SETTINGS.edgeThreshold;
  checkThreshold(nodeThreshold, 'nodeThreshold');
  checkThreshold(edgeThreshold, 'edgeThreshold');
  const { layout, ranking, logitWeights: w, rowScale, influence } = analysis;
  const N = layout.total;
  const A = raw.adjacency;

  // Always-kept nodes: tokens, logits, pinned.
  const exempt = new Uint8Array(N);
  for (let i = layout.tokenOffset; i < N; i++) exempt[i] = 1;
  for (let q = 0; q < (options.pinned ?? []).length; q++) {
    const p = options.pinned![q];
    if (!Number.isInteger(p) || p < 0 || p >= N) {
      throw new EngineError('argument', `pinned node ${p} is not a node index in [0, ${N})`, {
        field: `pinned[${q}]`,
      });
    }
    exempt[p] = 1;
  }

  // 1. Node pruning.
  const inP = selectNodes(ranking, layout, nodeThreshold);
  for (let i = 0; i < N; i++) if (exempt[i]) inP[i] = 1;
  let M = 0;
  for (let i = 0; i < N; i++) M += inP[i];
  const pIdx = new Int32Array(M);
  for (let i = 0, m = 0; i < N; i++) if (inP[i]) pIdx[m++] = i;

  // 2. Edge scores on P. One pass for the P row sums, then the scores are recomputed on each
  // pass of the cut instead of stored (20 bytes per nonzero entry of P would rival the
  // adjacency itself); only the kept edges are stored, in row-major (target, source) order,
  // so "first in index order" = first here.
  const scaleP = new Float64Array(N);
  for (let a = 0; a < M; a++) {
    const base = pIdx[a] * N;
    let s = 0;
    for (let b = 0; b < M; b++) s += Math.abs(A[base + pIdx[b]]);
    scaleP[pIdx[a]] = s > 0 ? 1 / s : 0;
  }
  const infP = influenceByTopologicalPass(A, N, scaleP, w, inP);
  for (let i = 0; i < N; i++) infP[i] += w[i];
  /** Calls visit for every positive edge score of P, in (target, source) order. */
  const forEachEdge = (visit: (score: number, i: number, j: number, x: number) => void) => {
    for (let a = 0; a < M; a++) {
      const i = pIdx[a];
      const sc = scaleP[i];
      const fi = infP[i];
      if (sc === 0 || fi === 0) continue;
      const base = i * N;
      for (let b = 0; b < M; b++) {
        const j = pIdx[b];
        const x = A[base + j];
        if (x === 0) continue;
        const score = Math.abs(x) * sc * fi;
        if (score > 0) visit(score, i, j, x);
      }
    }
  };
  const cut = cutForShareStream((visit) => forEachEdge(visit), edgeThreshold);
  if (cut.kept * KEPT_EDGE_BYTES > availableBytes()) {
    throw new EngineError(
      'resources',
      `pruning keeps ${cut.kept} edges, about ${formatBytes(cut.kept * KEPT_EDGE_BYTES)} with the graph output, more than the memory available; lower edgeThreshold (now ${edgeThreshold}) or nodeThreshold (now ${nodeThreshold})`,
      { field: 'edgeThreshold' },
    );
  }
  const eT = new Int32Array(cut.kept);
  const eS = new Int32Array(cut.kept);
  const eW = new Float32Array(cut.kept);
  let nE = 0;
  if (!cut.keepNone) {
    let ties = cut.tiesKept;
    forEachEdge((score, i, j, x) => {
      if (score > cut.tau || (score === cut.tau && ties-- > 0)) {
        eT[nE] = i;
        eS[nE] = j;
        eW[nE] = x;
        nE++;
      }
    });
  }

  // 3. Clean-up (greatest fixed point by a work list).
  const alive = inP;
  const outDeg = new Int32Array(N);
  const inDeg = new Int32Array(N);
  for (let e = 0; e < nE; e++) {
    outDeg[eS[e]]++;
    inDeg[eT[e]]++;
  }
  // CSR by source (edge -> target) and by target (edge -> source).
  const outStart = new Int32Array(N + 1);
  const inStart = new Int32Array(N + 1);
  for (let i = 0; i < N; i++) {
    outStart[i + 1] = outStart[i] + outDeg[i];
    inStart[i + 1] = inStart[i] + inDeg[i];
  }
  const outTo = new Int32Array(nE);
  const inFrom = new Int32Array(nE);
  {
    const oc = outStart.slice(0, N);
    const ic = inStart.slice(0, N);
    for (let e = 0; e < nE; e++) {
      outTo[oc[eS[e]]++] = eT[e];
      inFrom[ic[eT[e]]++] = eS[e];
    }
  }
  const isFeature = (i: number) => i < layout.errorOffset;
  const violates = (i: number) =>
    alive[i] === 1 && exempt[i] === 0 && (outDeg[i] === 0 || (isFeature(i) && inDeg[i] === 0));
  const queue: number[] = [];
  for (let i = 0; i < layout.tokenOffset; i++) if (violates(i)) queue.push(i);
  while (queue.length > 0) {
    const u = queue.pop()!;
    if (alive[u] === 0) continue;
    alive[u] = 0;
    for (let q = outStart[u]; q < outStart[u + 1]; q++) {
      const t = outTo[q];
      if (alive[t]) {
        inDeg[t]--;
        if (violates(t)) queue.push(t);
      }
    }
    for (let q = inStart[u]; q < inStart[u + 1]; q++) {
      const s = inFrom[q];
      if (alive[s]) {
        outDeg[s]--;
        if (violates(s)) queue.push(s);
      }
    }
  }

  // 4. Output.
  let nKept = 0;
  for (let i = 0; i < N; i++) nKept += alive[i];
  const keptNodes = new Int32Array(nKept);
  const nodeInfluence = new Float32Array(nKept);
  for (let i = 0, m = 0; i < N; i++) {
    if (alive[i]) {
      keptNodes[m] = i;
      nodeInfluence[m] = ranking.share[i];
      m++;
    }
  }
  let nOut = 0;
  for (let e = 0; e < nE; e++) if (alive[eT[e]] && alive[eS[e]]) nOut++;
  const edges: PrunedEdges = {
    target: new Int32Array(nOut),
    source: new Int32Array(nOut),
    weight: new Float32Array(nOut),
  };
  for (let e = 0, q = 0; e < nE; e++) {
    if (alive[eT[e]] && alive[eS[e]]) {
      edges.target[q] = eT[e];
      edges.source[q] = eS[e];
      edges.weight[q] = eW[e];
      q++;
    }
  }
  const scores = graphScoresFrom(A, layout, rowScale, influence, w);
  return {
    keptNodes,
    nodeInfluence,
    edges,
    replacementScore: scores.replacementScore,
    completenessScore: scores.completenessScore,
    nodeThreshold,
    edgeThreshold,
  };
}
