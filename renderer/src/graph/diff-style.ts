/**
 * The merged graph of a diff (graphs.diff with `merged`) as the pane machinery draws it: one
 * synthetic view (columns = aligned prompt positions, edges weighted B − A, so the usual
 * blue/red edge colours read "stronger in B" / "stronger in A") and node colours by change.
 */
import type { TraceDiff } from '../../../electron/api/contract.ts';
import { type MergedEdgeArrays, mergedEdgeArrays } from '../../../electron/api/packed-edges.ts';
import type { MergedStatus } from '../../../electron/engine/graph-diff/types.ts';
import type { GraphView, ViewNode } from '../api/types.ts';

/** Node colours of the diff view, by status (also the legend's). */
export const DIFF_COLORS: Readonly<Record<MergedStatus, string>> = {
  only_a: '#d97706', // amber: only in A
  only_b: '#7c3aed', // violet: only in B
  up: '#15803d', // green: larger in B
  down: '#dc2626', // red: smaller in B
  same: '#cbd5e1', // grey: in both, main value unchanged
};

export const STATUS_TEXT: Readonly<Record<MergedStatus, string>> = {
  only_a: 'only in A',
  only_b: 'only in B',
  up: 'up in B',
  down: 'down in B',
  same: 'unchanged',
};

export interface NodeRef {
  traceId: number;
  nodeId: string;
}

export interface MergedGraph {
  view: GraphView;
  /** Scene node id → the node in trace A (when there) else in trace B. */
  refs: Map<string, NodeRef>;
  /** Status of every scene node (tokens too, though the view does not colour them). */
  status: Map<string, MergedStatus>;
  /** Scene node id → index into the diff's merged.nodes. */
  mergedIndex: Map<string, number>;
  /** Node id in A / in B → scene node id (to select a list item in the graph). */
  sceneIdOfA: Map<string, string>;
  sceneIdOfB: Map<string, string>;
  /** Nodes by status, tokens left out (they keep their colour). */
  counts: Record<MergedStatus, number>;
}

/** Column label: the token, or "A→B" where the prompts differ there. */
export function columnLabels(d: Pick<TraceDiff, 'alignment' | 'prompt_tokens'>): string[] {
  return d.alignment.columns.map(({ a, b }) => {
    const ta = a === null ? null : d.prompt_tokens.a[a];
    const tb = b === null ? null : d.prompt_tokens.b[b];
    if (ta === null) return `+${tb ?? ''}`;
    if (tb === null) return `−${ta}`;
    return ta === tb ? ta : `${ta}→${tb}`;
  });
}

const minNullable = (x: number | null, y: number | null) =>
  x === null ? y : y === null ? x : Math.min(x, y);
const maxNullable = (x: number | null, y: number | null) =>
  x === null ? y : y === null ? x : Math.max(x, y);

/**
 * A diff as the renderer keeps it: `mergedEdges` holds the merged graph's edges as typed arrays,
 * decoded from the packed form when it arrived (workspace.loadDiff).
 */
export type ClientDiff = TraceDiff & { mergedEdges?: MergedEdgeArrays | null };

export function mergedGraph(d: ClientDiff): MergedGraph {
  const m = d.merged;
  if (!m) throw new Error('the diff has no merged graph (ask graphs.diff with merged: true)');
  const tokens = columnLabels(d);
  const refs = new Map<string, NodeRef>();
  const status = new Map<string, MergedStatus>();
  const sceneIdOfA = new Map<string, string>();
  const sceneIdOfB = new Map<string, string>();
  const mergedIndex = new Map<string, number>();
  const counts: Record<MergedStatus, number> = { only_a: 0, only_b: 0, up: 0, down: 0, same: 0 };
  const nodes: ViewNode[] = m.nodes.map((n, k) => {
    const s = (n.a ?? n.b)!;
    // A B-only node may carry the id of another A node (prompts of other lengths): keep ids unique.
    let id = s.id;
    if (refs.has(id)) id = `B:${id}`;
    refs.set(
      id,
      n.a ? { traceId: d.traces.a.traceId, nodeId: n.a.id } : { traceId: d.traces.b.traceId, nodeId: s.id },
    );
    status.set(id, n.status);
    mergedIndex.set(id, k);
    // Tokens keep their own colour (a substitution shows in the column label): not counted.
    if (n.kind !== 'token') counts[n.status]++;
    if (n.a) sceneIdOfA.set(n.a.id, id);
    if (n.b) sceneIdOfB.set(n.b.id, id);
    const label =
      n.kind === 'token'
        ? (tokens[n.column] ?? s.label)
        : n.a && n.b && n.a.label !== n.b.label && n.kind === 'feature'
          ? n.a.label || n.b.label
          : s.label;
    return {
      id,
      kind: n.kind,
      layer: n.layer,
      position: n.column,
      index: s.index,
      activation: n.b?.activation ?? n.a?.activation ?? null,
      influence: minNullable(n.a?.influence ?? null, n.b?.influence ?? null),
      probability: maxNullable(n.a?.token_prob ?? null, n.b?.token_prob ?? null),
      token: n.kind === 'token' || n.kind === 'logit' ? label : null,
      label: n.kind === 'token' || n.kind === 'logit' ? '' : label,
    };
  });
  const edges = d.mergedEdges ?? mergedEdgeArrays(m);
  const E = edges.source.length;
  const weight = new Float32Array(E);
  // B − A; an edge missing from one side counts 0 there (NaN in the arrays).
  for (let i = 0; i < E; i++) {
    const a = edges.weightA[i];
    const b = edges.weightB[i];
    weight[i] = (Number.isNaN(b) ? 0 : b) - (Number.isNaN(a) ? 0 : a);
  }
  const { source, target } = edges;
  const view: GraphView = {
    traceId: d.traces.a.traceId,
    nodeThreshold: 1,
    edgeThreshold: 1,
    pinned: [],
    nLayers: d.nLayers,
    nPositions: tokens.length,
    promptTokens: tokens,
    unprunedNodes: nodes.length,
    nodes,
    edges: { source, target, weight },
    replacementScore: null,
    completenessScore: null,
    cached: true,
  };
  return { view, refs, status, mergedIndex, sceneIdOfA, sceneIdOfB, counts };
}
