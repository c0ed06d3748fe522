/**
 * The diff of two attribution graphs of one model and transcoder set: which nodes and edges
 * are only in A, only in B, or in both with other values. Pure (no I/O).
 *
 * Matching (attribution.md §6 ids):
 * - prompt positions are aligned first (align.ts): same prompt, substitution, or LCS;
 * - a feature matches the same (layer, feature index) at the aligned position;
 * - an error node the same layer at the aligned position; a token node the aligned position
 *   (a substituted token is a change: token_a ≠ token_b);
 * - a logit the same output token (`logitKey`), or the same label for a target that is not a
 *   token, wherever the prompt ends;
 * - an edge the pair of its matched endpoints.
 * The diff is symmetric: diff(B, A) is diff(A, B) with the sides swapped (ties in the sorted
 * lists are broken by keys that do not depend on the order).
 */
import { EngineError } from '../errors.ts';
import { alignPrompts } from './align.ts';
import type {
  DiffGraph,
  DiffGraphNode,
  DiffOptions,
  EdgeChange,
  GraphDiff,
  MergedEdge,
  MergedNode,
  MergedStatus,
  NodeChange,
  NodeSide,
} from './types.ts';

/** Two graphs of different models or transcoder sets: names the first field that differs. */
export class GraphDiffMismatchError extends EngineError {
  constructor(
    readonly fieldName: string,
    readonly valueA: string,
    readonly valueB: string,
    nameA: string,
    nameB: string,
  ) {
    super(
      'mismatch',
      `cannot diff graphs of different models or transcoder sets: ${fieldName} is ${valueA} in ${nameA} but ${valueB} in ${nameB}`,
      { field: fieldName },
    );
    this.name = 'GraphDiffMismatchError';
  }
}

function checkIdentity(a: DiffGraph, b: DiffGraph): void {
  const fields = [...new Set([...Object.keys(a.identity), ...Object.keys(b.identity)])].sort();
  for (const f of fields) {
    const va = a.identity[f];
    const vb = b.identity[f];
    if (va !== vb) throw new GraphDiffMismatchError(f, va ?? '(absent)', vb ?? '(absent)', a.name, b.name);
  }
}

function side(n: DiffGraphNode): NodeSide {
  return {
    id: n.id,
    kind: n.kind,
    layer: n.layer,
    index: n.index,
    position: n.position,
    label: n.label,
    activation: n.activation,
    influence: n.influence,
    token_prob: n.probability,
  };
}

/** Match keys of a graph's nodes. */
function nodeKeys(g: DiffGraph, columnOf: Int32Array, which: 'a' | 'b'): string[] {
  const seen = new Set<string>();
  return g.nodes.map((n) => {
    let key: string | null;
    const col = n.position >= 0 && n.position < columnOf.length ? columnOf[n.position] : -1;
    switch (n.kind) {
      case 'feature':
        key = col < 0 ? null : `feature|${n.layer}|${n.index}|${col}`;
        break;
      case 'error':
        key = col < 0 ? null : `error|${n.layer}|${col}`;
        break;
      case 'token':
        key = col < 0 ? null : `token|${col}`;
        break;
      case 'logit':
        key = `logit|${n.logitKey ?? `token:${n.index}`}`;
        break;
    }
    // At a position only this prompt has: never matched.
    if (key === null) return `unaligned-${which}|${n.id}`;
    // Two logits of one graph with one label stay apart.
    let k = key;
    for (let i = 2; seen.has(k); i++) k = `${key}#${i}`;
    seen.add(k);
    return k;
  });
}

const same = (x: number | null, y: number | null, tol: number) =>
  x === null || y === null ? x === y : Math.abs(x - y) <= tol;

const delta = (a: number | null, b: number | null) => (a === null || b === null ? 0 : b - a);

/** B − A of the kind's main value (see NodeChange.change). */
function mainChange(a: DiffGraphNode, b: DiffGraphNode): number {
  switch (a.kind) {
    case 'feature':
      return delta(a.activation, b.activation);
    case 'logit':
      return delta(a.probability, b.probability);
    default:
      return delta(b.influence, a.influence);
  }
}

/** Most important first: logits by probability, then by influence share (lower first). */
function importanceOrder(x: NodeSide, y: NodeSide): number {
  const lx = x.kind === 'logit' ? 0 : 1;
  const ly = y.kind === 'logit' ? 0 : 1;
  if (lx !== ly) return lx - ly;
  if (lx === 0 && x.token_prob !== y.token_prob) return (y.token_prob ?? 0) - (x.token_prob ?? 0);
  const ix = x.influence ?? Number.POSITIVE_INFINITY;
  const iy = y.influence ?? Number.POSITIVE_INFINITY;
  if (ix !== iy) return ix < iy ? -1 : 1;
  return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
}

const pairKey = (x: string, y: string) => (x < y ? `${x}|${y}` : `${y}|${x}`);
const byKey = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

function checkTop(top: number | undefined): number {
  if (top === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isSafeInteger(top) || top < 0)
    throw new EngineError('argument', `top must be a non-negative integer, got ${top}`, { field: 'top' });
  return top;
}

export function diffGraphs(a: DiffGraph, b: DiffGraph, options: DiffOptions = {}): GraphDiff {
  const top = checkTop(options.top);
  const tol = options.tolerance ?? 0;
  if (!(tol >= 0))
    throw new EngineError('argument', `tolerance must be ≥ 0, got ${tol}`, { field: 'tolerance' });
  checkIdentity(a, b);
  const al = alignPrompts(a.promptTokens, b.promptTokens);
  const lastCol = al.columns.length;
  const keysA = nodeKeys(a, al.columnOfA, 'a');
  const keysB = nodeKeys(b, al.columnOfB, 'b');
  const indexB = new Map<string, number>();
  keysB.forEach((k, i) => {
    indexB.set(k, i);
  });
  const matchOfA = new Int32Array(a.nodes.length).fill(-1);
  const matchOfB = new Int32Array(b.nodes.length).fill(-1);
  keysA.forEach((k, i) => {
    const j = indexB.get(k);
    if (j !== undefined && a.nodes[i].kind === b.nodes[j].kind) {
      matchOfA[i] = j;
      matchOfB[j] = i;
    }
  });

  // ---- nodes
  const onlyA: NodeSide[] = [];
  const onlyB: NodeSide[] = [];
  const changed: NodeChange[] = [];
  const merged: MergedNode[] = [];
  const mergedOfA = new Int32Array(a.nodes.length).fill(-1);
  const mergedOfB = new Int32Array(b.nodes.length).fill(-1);
  const columnOf = (n: DiffGraphNode, columnOfPos: Int32Array) =>
    n.kind === 'logit' || n.position < 0 || n.position >= columnOfPos.length || columnOfPos[n.position] < 0
      ? Math.max(0, lastCol - 1)
      : columnOfPos[n.position];
  let unchanged = 0;
  a.nodes.forEach((na, i) => {
    const j = matchOfA[i];
    if (j < 0) {
      onlyA.push(side(na));
      mergedOfA[i] = merged.length;
      merged.push({
        key: keysA[i],
        kind: na.kind,
        layer: na.layer,
        column: columnOf(na, al.columnOfA),
        a: side(na),
        b: null,
        status: 'only_a',
        change: 0,
      });
      return;
    }
    const nb = b.nodes[j];
    const diff =
      !same(na.activation, nb.activation, tol) ||
      !same(na.influence, nb.influence, tol) ||
      !same(na.probability, nb.probability, tol) ||
      (na.kind === 'token' && na.label !== nb.label);
    const change = mainChange(na, nb);
    let status: MergedStatus = 'same';
    if (change > tol) status = 'up';
    else if (change < -tol) status = 'down';
    if (diff) {
      changed.push({
        key: keysA[i],
        kind: na.kind,
        layer: na.layer,
        index_a: na.index,
        index_b: nb.index,
        id_a: na.id,
        id_b: nb.id,
        position_a: na.position,
        position_b: nb.position,
        label_a: na.label,
        label_b: nb.label,
        activation_a: na.activation,
        activation_b: nb.activation,
        influence_a: na.influence,
        influence_b: nb.influence,
        token_prob_a: na.probability,
        token_prob_b: nb.probability,
        change,
      });
    } else unchanged++;
    mergedOfA[i] = mergedOfB[j] = merged.length;
    merged.push({
      key: keysA[i],
      kind: na.kind,
      layer: na.layer,
      column: columnOf(na, al.columnOfA),
      a: side(na),
      b: side(nb),
      status,
      change,
    });
  });
  b.nodes.forEach((nb, j) => {
    if (matchOfB[j] >= 0) return;
    onlyB.push(side(nb));
    mergedOfB[j] = merged.length;
    merged.push({
      key: keysB[j],
      kind: nb.kind,
      layer: nb.layer,
      column: columnOf(nb, al.columnOfB),
      a: null,
      b: side(nb),
      status: 'only_b',
      change: 0,
    });
  });
  onlyA.sort(importanceOrder);
  onlyB.sort(importanceOrder);
  const infDelta = (c: NodeChange) => Math.abs(delta(c.influence_a, c.influence_b));
  changed.sort(
    (x, y) =>
      Math.abs(y.change) - Math.abs(x.change) ||
      infDelta(y) - infDelta(x) ||
      byKey(pairKey(x.id_a, x.id_b), pairKey(y.id_a, y.id_b)),
  );

  // ---- edges
  const edgeKey = (s: number, t: number) => s * merged.length + t;
  const edgesA = new Map<number, number>();
  for (let e = 0; e < a.edges.source.length; e++)
    edgesA.set(edgeKey(mergedOfA[a.edges.source[e]], mergedOfA[a.edges.target[e]]), e);
  let onlyEdgesB = 0;
  let unchangedEdges = 0;
  const edgeChanges: EdgeChange[] = [];
  const mergedEdges: MergedEdge[] = [];
  const seenA = new Uint8Array(a.edges.source.length);
  for (let e = 0; e < b.edges.source.length; e++) {
    const s = mergedOfB[b.edges.source[e]];
    const t = mergedOfB[b.edges.target[e]];
    const wb = b.edges.weight[e];
    const ea = edgesA.get(edgeKey(s, t));
    if (ea === undefined) {
      onlyEdgesB++;
      mergedEdges.push({ source: s, target: t, weight_a: null, weight_b: wb });
      continue;
    }
    seenA[ea] = 1;
    const wa = a.edges.weight[ea];
    mergedEdges.push({ source: s, target: t, weight_a: wa, weight_b: wb });
    if (Math.abs(wb - wa) <= tol) {
      unchangedEdges++;
      continue;
    }
    edgeChanges.push({
      source_a: a.nodes[a.edges.source[ea]].id,
      target_a: a.nodes[a.edges.target[ea]].id,
      source_b: b.nodes[b.edges.source[e]].id,
      target_b: b.nodes[b.edges.target[e]].id,
      weight_a: wa,
      weight_b: wb,
      delta: wb - wa,
    });
  }
  let onlyEdgesA = 0;
  for (let e = 0; e < a.edges.source.length; e++) {
    if (seenA[e]) continue;
    onlyEdgesA++;
    mergedEdges.push({
      source: mergedOfA[a.edges.source[e]],
      target: mergedOfA[a.edges.target[e]],
      weight_a: a.edges.weight[e],
      weight_b: null,
    });
  }
  const edgeTie = (c: EdgeChange) => pairKey(`${c.source_a}>${c.target_a}`, `${c.source_b}>${c.target_b}`);
  edgeChanges.sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta) || byKey(edgeTie(x), edgeTie(y)));

  const out: GraphDiff = {
    nodes: {
      only_a: onlyA.slice(0, top),
      only_b: onlyB.slice(0, top),
      changed: changed.slice(0, top),
      totals: { only_a: onlyA.length, only_b: onlyB.length, changed: changed.length, unchanged },
    },
    edges: {
      only_a: onlyEdgesA,
      only_b: onlyEdgesB,
      changed: edgeChanges.slice(0, top),
      totals: { changed: edgeChanges.length, unchanged: unchangedEdges },
    },
    alignment: { method: al.method, columns: al.columns, substitutions: al.substitutions },
    prompt_tokens: { a: [...a.promptTokens], b: [...b.promptTokens] },
  };
  if (options.merged) out.merged = { nodes: merged, edges: mergedEdges };
  return out;
}

/** True when the diff reports nothing (the diff of a graph with itself). */
export function isEmptyDiff(d: GraphDiff): boolean {
  return (
    d.nodes.totals.only_a === 0 &&
    d.nodes.totals.only_b === 0 &&
    d.nodes.totals.changed === 0 &&
    d.edges.only_a === 0 &&
    d.edges.only_b === 0 &&
    d.edges.totals.changed === 0
  );
}
