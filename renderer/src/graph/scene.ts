/**
 * A scene: what one pane draws (nodes with positions and glyphs, edges with colour and
 * width). Built from a stored view, its layout and the client-side filter; the WebGL view and
 * the SVG/PNG exports both draw from it, so an export shows what the pane shows.
 */
import type { GraphView, NodeKind, ViewNode } from '../api/types.ts';
import { fmtProb } from '../util/format.ts';
import type { FilterResult } from './filter.ts';
import type { Highlight } from './intervention.ts';
import type { Frame, Layout } from './layout.ts';
import {
  COLORS,
  canvasLabel,
  changeColor,
  edgeAlpha,
  edgeWidth,
  GLYPH,
  type Glyph,
  type NodeSizeBy,
  nodeColor,
  nodeSize,
  relativeWeights,
  withAlpha,
} from './style.ts';

export interface SceneNode {
  id: string;
  kind: NodeKind | 'supernode';
  x: number;
  y: number;
  size: number;
  glyph: Glyph;
  color: string;
  label: string;
  /**
   * 'always': drawn whatever the density (subgraph nodes); 'auto': placed where it
   * fits, by `priority`; 'none': not drawn on the canvas (tokens: the pane's axis shows them).
   */
  labelMode: 'always' | 'auto' | 'none';
  /** Label placement order, higher first (features by influence, errors after features). */
  priority?: number;
  labelPos: 'right' | 'below' | 'above';
}

export interface SceneEdge {
  id: string;
  source: string;
  target: string;
  weight: number;
  /** |weight| / Σ|weight| into the target. */
  rel: number;
  width: number;
  color: string;
  strongColor: string;
}

/**
 * Every edge of a scene as typed arrays (endpoints are indices into `Scene.nodes`): what the
 * canvas reads, so a big view never becomes a million edge objects.
 */
export interface EdgeTable {
  source: Int32Array;
  target: Int32Array;
  weight: Float32Array;
  rel: Float32Array;
}

export interface Scene {
  nodes: SceneNode[];
  /** Edge objects; built on first read when the scene has an `edgeTable` (exports). */
  edges: SceneEdge[];
  edgeTable?: EdgeTable;
  frame: Frame;
  /** Column labels (prompt tokens) with their x, drawn along the bottom of exports. */
  columns: Array<{ x: number; label: string; width?: number; empty?: boolean }>;
  rows: Array<{ y: number; label: string }>;
  title: string;
}

export const edgeKey = (source: string, target: string) => `${source}>${target}`;

export function edgeStyle(weight: number, rel: number): Pick<SceneEdge, 'width' | 'color' | 'strongColor'> {
  const hue = weight >= 0 ? COLORS.positive : COLORS.negative;
  return { width: edgeWidth(rel), color: withAlpha(hue, edgeAlpha(rel)), strongColor: withAlpha(hue, 0.95) };
}

export function sceneFromView(
  view: GraphView,
  layout: Layout,
  filter: FilterResult,
  title: string,
  opts: {
    sizeBy?: NodeSizeBy;
    /** Token nodes unlabelled on the canvas (the pane draws a token axis). */
    tokenAxis?: boolean;
    /** Factor on feature and error glyphs (crowded views draw them smaller: see crowdScale). */
    nodeScale?: number;
  } = {},
): Scene {
  const sizeBy = opts.sizeBy ?? 'influence';
  // The largest feature activation of the stored view, so sizes do not jump as filters move.
  let maxActivation = 0;
  for (const n of view.nodes)
    if (n.kind === 'feature') maxActivation = Math.max(maxActivation, Math.abs(n.activation ?? 0));
  const nodes: SceneNode[] = [];
  const sceneIndex = new Int32Array(view.nodes.length).fill(-1);
  view.nodes.forEach((n, i) => {
    if (!filter.nodeMask[i]) return;
    const p = layout.positions.get(n.id) ?? { x: 0, y: 0 };
    sceneIndex[i] = nodes.length;
    nodes.push({
      id: n.id,
      kind: n.kind,
      x: p.x,
      y: p.y,
      size:
        nodeSize(n, sizeBy, maxActivation) *
        (n.kind === 'feature' || n.kind === 'error' ? (opts.nodeScale ?? 1) : 1),
      glyph: GLYPH[n.kind],
      color: nodeColor(n.kind),
      label: canvasLabel(n),
      // Logits are placed first (highest priority) but never on top of each other.
      labelMode: n.kind === 'token' ? (opts.tokenAxis ? 'none' : 'always') : 'auto',
      labelPos: n.kind === 'token' ? 'below' : n.kind === 'logit' ? 'above' : 'right',
      priority: labelPriority(n),
    });
  });
  const { source, target, weight } = view.edges;
  const rel = relativeWeights(target, weight, view.nodes.length, filter.edgeMask);
  const E = filter.edgeCount;
  const table: EdgeTable = {
    source: new Int32Array(E),
    target: new Int32Array(E),
    weight: new Float32Array(E),
    rel: new Float32Array(E),
  };
  let k = 0;
  for (let e = 0; e < source.length && k < E; e++) {
    if (!filter.edgeMask[e]) continue;
    table.source[k] = sceneIndex[source[e]];
    table.target[k] = sceneIndex[target[e]];
    table.weight[k] = weight[e];
    table.rel[k] = rel[e];
    k++;
  }
  const columns = layout.columnX.map((x, p) => ({
    x,
    label: view.promptTokens[p] ?? String(p),
    width: layout.columnWidth[p],
    empty: layout.empty[p],
  }));
  const rows = layout.rowY.map((y, r) => ({
    y,
    label: r === 0 ? 'Emb' : r === layout.rowY.length - 1 ? 'Logits' : `L${r - 1}`,
  }));
  return withLazyEdges({ nodes, edges: [], frame: layout.frame, columns, rows, title }, table);
}

/**
 * Glyph scale for `nodes` nodes in a `width` × `height` px pane: 1 while each node has ~28 px
 * of room, smaller beyond (down to 0.3), so a 10k-node view is dots, not overlapping discs.
 */
export function crowdScale(nodes: number, width: number, height: number): number {
  const room = Math.sqrt((Math.max(1, width) * Math.max(1, height)) / Math.max(1, nodes));
  return Math.min(1, Math.max(0.3, room / 28));
}

/** Label order of a view node: logits by probability, then features by influence, then errors. */
export function labelPriority(n: ViewNode): number {
  const inf = 1 - Math.min(1, Math.max(0, n.influence ?? 1));
  if (n.kind === 'feature') return 1 + inf;
  if (n.kind === 'error') return inf;
  if (n.kind === 'logit') return 10 + (n.probability ?? 0);
  return 0;
}

/** The i-th edge of a table as an edge object. */
export function tableEdge(nodes: readonly SceneNode[], t: EdgeTable, e: number): SceneEdge {
  const s = nodes[t.source[e]].id;
  const d = nodes[t.target[e]].id;
  return {
    id: edgeKey(s, d),
    source: s,
    target: d,
    weight: t.weight[e],
    rel: t.rel[e],
    ...edgeStyle(t.weight[e], t.rel[e]),
  };
}

/** `scene` with its `edges` read from `table` on first access (and kept). */
function withLazyEdges(scene: Scene, table: EdgeTable): Scene {
  let built: SceneEdge[] | null = null;
  Object.defineProperty(scene, 'edges', {
    enumerable: true,
    configurable: true,
    get: () => {
      if (!built)
        built = Array.from({ length: table.source.length }, (_, e) => tableEdge(scene.nodes, table, e));
      return built;
    },
  });
  scene.edgeTable = table;
  return scene;
}

/**
 * A scene recoloured by an intervention's result: features and logits that changed take the
 * change's colour (green rose, red fell, violet edited), the other features and logits turn
 * grey; tokens, errors and supernodes keep theirs. Logit labels show the probability before →
 * after. Positions, sizes and edges are untouched, so the canvas only restyles nodes.
 */
export function withHighlight(scene: Scene, hl: Highlight | null, view?: Pick<GraphView, 'nodes'>): Scene {
  if (!hl) return scene;
  const tokens = new Map<string, string>();
  if (view)
    for (const n of view.nodes) if (n.kind === 'logit') tokens.set(n.id, JSON.stringify(n.token ?? ''));
  const nodes = scene.nodes.map((n) => {
    if (n.kind !== 'feature' && n.kind !== 'logit') return n;
    const c = hl.get(n.id);
    if (!c) return { ...n, color: COLORS.unchanged };
    const color = changeColor(c);
    if (n.kind !== 'logit') return { ...n, color };
    const token = tokens.get(n.id) ?? n.label;
    return { ...n, color, label: `${token} ${fmtProb(c.before)}→${fmtProb(c.after)}` };
  });
  // Same edges (the table, or the lazily built objects): only the nodes are restyled.
  const out = Object.create(Object.getPrototypeOf(scene), Object.getOwnPropertyDescriptors(scene)) as Scene;
  out.nodes = nodes;
  return out;
}
