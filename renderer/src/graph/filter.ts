/**
 * Client-side pruning of a stored view to tighter thresholds, so the sliders respond at once
 * (the API re-prunes from the unpruned adjacency when the user asks for more than is stored).
 *
 * The rules follow attribution.md §5 on what the view holds:
 * - nodes: a feature or error node is kept while its cumulative influence share (its
 *   `influence`) is below the threshold, plus the first one that reaches it; tokens, logits and
 *   pinned nodes always stay;
 * - edges: scores Â_P[t, s]·inf_P[t] recomputed on the node-filtered view (Â_P = |A| with rows
 *   normalized, inf_P the logit-weighted influence + the logit weights); the stored edges hold
 *   about `storedEdgeThreshold` of the full score mass, so keeping share t of the full mass
 *   means keeping the top edges until t / storedEdgeThreshold of the stored mass;
 * - clean-up to a fixed point: a feature or error node needs a kept outgoing edge, a feature
 *   node also a kept incoming edge (pinned, token and logit nodes are exempt).
 * When both thresholds are at least the stored ones everything stored is shown.
 */
import type { GraphView } from '../api/types.ts';

export interface FilterResult {
  nodeMask: Uint8Array;
  edgeMask: Uint8Array;
  nodeCount: number;
  edgeCount: number;
}

const EPS = 1e-9;

export function keepAll(view: GraphView): FilterResult {
  return {
    nodeMask: new Uint8Array(view.nodes.length).fill(1),
    edgeMask: new Uint8Array(view.edges.source.length).fill(1),
    nodeCount: view.nodes.length,
    edgeCount: view.edges.source.length,
  };
}

/** Whether showing these thresholds needs a view pruned by the API (looser than stored). */
export function needsRefetch(view: GraphView, nodeThreshold: number, edgeThreshold: number): boolean {
  return nodeThreshold > view.nodeThreshold + EPS || edgeThreshold > view.edgeThreshold + EPS;
}

function nodeSelection(view: GraphView, threshold: number, pinned: ReadonlySet<string>): Uint8Array {
  const N = view.nodes.length;
  const keep = new Uint8Array(N);
  let firstAbove = -1;
  let firstAboveShare = Number.POSITIVE_INFINITY;
  for (let i = 0; i < N; i++) {
    const n = view.nodes[i];
    if (n.kind === 'token' || n.kind === 'logit' || pinned.has(n.id)) {
      keep[i] = 1;
      continue;
    }
    const share = n.influence ?? 0;
    if (share < threshold - EPS) keep[i] = 1;
    else if (share < firstAboveShare) {
      firstAboveShare = share;
      firstAbove = i;
    }
  }
  if (firstAbove >= 0 && threshold > 0) keep[firstAbove] = 1;
  return keep;
}

/** Edge scores on the sub-view (nodes in `keepNode`), as in attribution.md §5. */
export function edgeScores(view: GraphView, keepNode: Uint8Array): Float64Array {
  const N = view.nodes.length;
  const { source, target, weight } = view.edges;
  const E = source.length;
  const rowSum = new Float64Array(N);
  for (let e = 0; e < E; e++)
    if (keepNode[source[e]] && keepNode[target[e]]) rowSum[target[e]] += Math.abs(weight[e]);
  // Influence flows from targets to sources: process nodes in topological order (sinks first).
  const outDeg = new Int32Array(N);
  const inEdges: number[][] = Array.from({ length: N }, () => []);
  for (let e = 0; e < E; e++) {
    if (!keepNode[source[e]] || !keepNode[target[e]]) continue;
    outDeg[source[e]]++;
    inEdges[target[e]].push(e);
  }
  const inf = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const n = view.nodes[i];
    if (n.kind === 'logit' && keepNode[i]) inf[i] = n.probability ?? 0;
  }
  const queue: number[] = [];
  for (let i = 0; i < N; i++) if (keepNode[i] && outDeg[i] === 0) queue.push(i);
  for (let q = 0; q < queue.length; q++) {
    const t = queue[q];
    const rs = rowSum[t];
    for (const e of inEdges[t]) {
      const s = source[e];
      if (rs > 0) inf[s] += (Math.abs(weight[e]) / rs) * inf[t];
      if (--outDeg[s] === 0) queue.push(s);
    }
  }
  const scores = new Float64Array(E);
  for (let e = 0; e < E; e++) {
    const t = target[e];
    if (!keepNode[source[e]] || !keepNode[t] || rowSum[t] <= 0) continue;
    scores[e] = (Math.abs(weight[e]) / rowSum[t]) * inf[t];
  }
  return scores;
}

function edgeSelection(view: GraphView, keepNode: Uint8Array, threshold: number): Uint8Array {
  const { source, target } = view.edges;
  const E = source.length;
  const keep = new Uint8Array(E);
  if (threshold >= view.edgeThreshold - EPS) {
    for (let e = 0; e < E; e++) keep[e] = keepNode[source[e]] && keepNode[target[e]] ? 1 : 0;
    return keep;
  }
  const scores = edgeScores(view, keepNode);
  const order: number[] = [];
  let total = 0;
  for (let e = 0; e < E; e++) {
    if (scores[e] > 0) {
      order.push(e);
      total += scores[e];
    }
  }
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  const goal = (threshold / Math.max(view.edgeThreshold, EPS)) * total;
  let run = 0;
  for (const e of order) {
    if (run >= goal - EPS * total || goal <= 0) break;
    keep[e] = 1;
    run += scores[e];
  }
  return keep;
}

function cleanUp(
  view: GraphView,
  keepNode: Uint8Array,
  keepEdge: Uint8Array,
  pinned: ReadonlySet<string>,
): void {
  const N = view.nodes.length;
  const { source, target } = view.edges;
  const E = source.length;
  const outCount = new Int32Array(N);
  const inCount = new Int32Array(N);
  const outEdges: number[][] = Array.from({ length: N }, () => []);
  const inEdges: number[][] = Array.from({ length: N }, () => []);
  for (let e = 0; e < E; e++) {
    if (!keepEdge[e]) continue;
    if (!keepNode[source[e]] || !keepNode[target[e]]) {
      keepEdge[e] = 0;
      continue;
    }
    outCount[source[e]]++;
    inCount[target[e]]++;
    outEdges[source[e]].push(e);
    inEdges[target[e]].push(e);
  }
  const exempt = (i: number) => {
    const n = view.nodes[i];
    return n.kind === 'token' || n.kind === 'logit' || pinned.has(n.id);
  };
  const fails = (i: number) => {
    if (!keepNode[i] || exempt(i)) return false;
    if (outCount[i] === 0) return true;
    return view.nodes[i].kind === 'feature' && inCount[i] === 0;
  };
  const work: number[] = [];
  for (let i = 0; i < N; i++) if (fails(i)) work.push(i);
  while (work.length) {
    const i = work.pop()!;
    if (!keepNode[i] || !fails(i)) continue;
    keepNode[i] = 0;
    for (const e of outEdges[i]) {
      if (!keepEdge[e]) continue;
      keepEdge[e] = 0;
      inCount[target[e]]--;
      if (fails(target[e])) work.push(target[e]);
    }
    for (const e of inEdges[i]) {
      if (!keepEdge[e]) continue;
      keepEdge[e] = 0;
      outCount[source[e]]--;
      if (fails(source[e])) work.push(source[e]);
    }
  }
}

/** The part of `view` shown at these thresholds (all of it when they are not tighter). */
export function filterView(
  view: GraphView,
  nodeThreshold: number,
  edgeThreshold: number,
  pinned: ReadonlySet<string> = new Set(),
): FilterResult {
  const tighterNodes = nodeThreshold < view.nodeThreshold - EPS;
  const tighterEdges = edgeThreshold < view.edgeThreshold - EPS;
  if (!tighterNodes && !tighterEdges) return keepAll(view);
  const nodeMask = tighterNodes
    ? nodeSelection(view, nodeThreshold, pinned)
    : new Uint8Array(view.nodes.length).fill(1);
  const edgeMask = edgeSelection(view, nodeMask, tighterEdges ? edgeThreshold : view.edgeThreshold);
  cleanUp(view, nodeMask, edgeMask, pinned);
  let nodeCount = 0;
  let edgeCount = 0;
  for (const k of nodeMask) nodeCount += k;
  for (const k of edgeMask) edgeCount += k;
  return { nodeMask, edgeMask, nodeCount, edgeCount };
}
