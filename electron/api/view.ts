/** Pruned graphs as the API sends them: graph JSON node ids, labels, edges by view index. */
import type { AttributionNodes, NodeLayout } from '../engine/attribution/graph-types.ts';
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import {
  embeddingNodeId,
  errorNodeId,
  featureNodeId,
  logitClerp,
  logitNodeId,
} from '../engine/graph-json/ids.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import { featureKey } from '../store/features.ts';
import type { Annotations } from '../store/types.ts';
import type { GraphView, NodeKind, PackedViewEdges, ViewEdges, ViewNode } from './contract.ts';
import { packEdges } from './packed-edges.ts';

export function nodeKind(lay: NodeLayout, i: number): NodeKind {
  return i < lay.errorOffset
    ? 'feature'
    : i < lay.tokenOffset
      ? 'error'
      : i < lay.logitOffset
        ? 'token'
        : 'logit';
}

/** The graph JSON id of raw node i. */
export function nodeId(nodes: AttributionNodes, lay: NodeLayout, i: number): string {
  const T = nodes.nPositions;
  if (i < lay.errorOffset)
    return featureNodeId(nodes.features.layer[i], nodes.features.index[i], nodes.features.position[i]);
  if (i < lay.tokenOffset) {
    const e = i - lay.errorOffset;
    return errorNodeId(Math.floor(e / T), e % T);
  }
  if (i < lay.logitOffset) {
    const p = i - lay.tokenOffset;
    return embeddingNodeId(nodes.promptTokenIds[p], p);
  }
  return logitNodeId(nodes.nLayers, nodes.logits.tokenId[i - lay.logitOffset], T - 1);
}

/** node id → raw index, for every node of the graph. */
export function nodeIndexById(nodes: AttributionNodes): Map<string, number> {
  const lay = nodeLayout(nodes);
  const out = new Map<string, number>();
  for (let i = 0; i < lay.total; i++) out.set(nodeId(nodes, lay, i), i);
  return out;
}

export interface ViewInput {
  traceId: number;
  nodes: AttributionNodes;
  pruned: PrunedGraph;
  /** featureKey(layer, index) → label, of the trace's transcoder set. */
  featureLabels: ReadonlyMap<string, string>;
  annotations: Annotations;
  pinned: string[];
  cached: boolean;
  imported?: boolean;
  /** Send the edges as `packedEdges` (typed arrays as base64) with `edges` left empty. */
  packEdges?: boolean;
}

/** A token as a label shows it: trimmed, newlines visible, '' when only whitespace. */
function labelToken(t: string): string {
  return t.replace(/\n/g, '⏎').trim();
}

/**
 * A feature's automatic label from its dashboard: its most frequent top-activating tokens (up
 * to three), then "→" and its top logit, e.g. "Dallas · Houston → Austin". '' when the
 * dashboard has neither.
 */
export function autoFeatureLabel(d: { topTokens: readonly string[]; topLogits: readonly string[] }): string {
  const count = new Map<string, number>();
  for (const t of d.topTokens) {
    const s = labelToken(t);
    if (s) count.set(s, (count.get(s) ?? 0) + 1);
  }
  // Most frequent first; ties keep the examples' order (strongest first).
  const tokens = [...count.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([t]) => t);
  const logit = d.topLogits.map(labelToken).find((t) => t.length > 0) ?? '';
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const head = clip(tokens.join(' · '), 34);
  if (head && logit) return `${head} → ${clip(logit, 14)}`;
  if (head) return head;
  return logit ? `→ ${clip(logit, 20)}` : '';
}

/** Sets `autoLabel` on the view's features that have a dashboard digest. */
export function applyAutoLabels(
  view: GraphView,
  digests: ReadonlyMap<string, { topTokens: readonly string[]; topLogits: readonly string[] }>,
): void {
  for (const n of view.nodes) {
    if (n.kind !== 'feature') continue;
    const d = digests.get(featureKey(n.layer, n.index));
    const label = d ? autoFeatureLabel(d) : '';
    if (label) n.autoLabel = label;
  }
}

export function buildGraphView(v: ViewInput): GraphView {
  const { nodes, pruned } = v;
  const lay = nodeLayout(nodes);
  const T = nodes.nPositions;
  const own = v.annotations.labels;
  const viewIndex = new Int32Array(lay.total).fill(-1);
  const out: ViewNode[] = new Array(pruned.keptNodes.length);
  for (let q = 0; q < pruned.keptNodes.length; q++) {
    const i = pruned.keptNodes[q];
    viewIndex[i] = q;
    const kind = nodeKind(lay, i);
    const id = nodeId(nodes, lay, i);
    const inf = pruned.nodeInfluence[q];
    const node: ViewNode = {
      id,
      kind,
      layer: 0,
      position: 0,
      index: -1,
      activation: null,
      influence: kind === 'logit' || !Number.isFinite(inf) ? null : inf,
      probability: null,
      token: null,
      label: own[id] ?? '',
    };
    if (kind === 'feature') {
      node.layer = nodes.features.layer[i];
      node.position = nodes.features.position[i];
      node.index = nodes.features.index[i];
      node.activation = nodes.features.activation[i];
      if (!node.label) node.label = v.featureLabels.get(featureKey(node.layer, node.index)) ?? '';
    } else if (kind === 'error') {
      const e = i - lay.errorOffset;
      node.layer = Math.floor(e / T);
      node.position = e % T;
    } else if (kind === 'token') {
      const p = i - lay.tokenOffset;
      node.layer = -1;
      node.position = p;
      node.index = nodes.promptTokenIds[p];
      node.token = nodes.promptTokens[p] ?? null;
    } else {
      const k = i - lay.logitOffset;
      node.layer = nodes.nLayers + 1;
      node.position = T - 1;
      node.index = nodes.logits.tokenId[k];
      node.probability = nodes.logits.probability[k];
      node.token = nodes.logits.token[k] ?? null;
      if (!node.label) node.label = logitClerp(node.token ?? '', node.probability);
    }
    out[q] = node;
  }
  const E = pruned.edges.target.length;
  const toViewIndices = (source: { [e: number]: number }, target: { [e: number]: number }) => {
    for (let e = 0; e < E; e++) {
      source[e] = viewIndex[pruned.edges.source[e]];
      target[e] = viewIndex[pruned.edges.target[e]];
    }
  };
  let edges: ViewEdges;
  let packedEdges: PackedViewEdges | undefined;
  if (v.packEdges) {
    const source = new Uint32Array(E);
    const target = new Uint32Array(E);
    toViewIndices(source, target);
    packedEdges = packEdges({ source, target, weight: pruned.edges.weight });
    edges = { source: [], target: [], weight: [] };
  } else {
    // Plain arrays: typed arrays would stringify as objects keyed by index.
    const source = new Array<number>(E);
    const target = new Array<number>(E);
    toViewIndices(source, target);
    edges = { source, target, weight: Array.from(pruned.edges.weight) };
  }
  const view: GraphView = {
    traceId: v.traceId,
    nodeThreshold: pruned.nodeThreshold,
    edgeThreshold: pruned.edgeThreshold,
    pinned: v.pinned,
    nLayers: nodes.nLayers,
    nPositions: T,
    promptTokens: nodes.promptTokens,
    unprunedNodes: lay.total,
    nodes: out,
    edges,
    replacementScore: Number.isFinite(pruned.replacementScore) ? pruned.replacementScore : null,
    completenessScore: Number.isFinite(pruned.completenessScore) ? pruned.completenessScore : null,
    cached: v.cached,
  };
  if (v.imported) view.imported = true;
  if (packedEdges) view.packedEdges = packedEdges;
  return view;
}
