/**
 * A scene: what one pane draws (nodes with positions and glyphs, edges with colour and
 * width). Built from a stored view, its layout and the client-side filter; the WebGL view and
 * the SVG/PNG exports both draw from it, so an export shows what the pane shows.
 */
import type { GraphView, NodeKind } from '../api/types.ts';
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
  /** 'always': drawn whatever the density (tokens, logits, subgraph nodes). */
  labelMode: 'always' | 'auto';
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

export interface Scene {
  nodes: SceneNode[];
  edges: SceneEdge[];
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
  opts: { sizeBy?: NodeSizeBy } = {},
): Scene {
  const sizeBy = opts.sizeBy ?? 'influence';
  // The largest feature activation of the stored view, so sizes do not jump as filters move.
  let maxActivation = 0;
  for (const n of view.nodes)
    if (n.kind === 'feature') maxActivation = Math.max(maxActivation, Math.abs(n.activation ?? 0));
  const nodes: SceneNode[] = [];
  view.nodes.forEach((n, i) => {
    if (!filter.nodeMask[i]) return;
    const p = layout.positions.get(n.id) ?? { x: 0, y: 0 };
    nodes.push({
      id: n.id,
      kind: n.kind,
      x: p.x,
      y: p.y,
      size: nodeSize(n, sizeBy, maxActivation),
      glyph: GLYPH[n.kind],
      color: nodeColor(n.kind),
      label: canvasLabel(n),
      labelMode: n.kind === 'token' || n.kind === 'logit' ? 'always' : 'auto',
      labelPos: n.kind === 'token' ? 'below' : n.kind === 'logit' ? 'above' : 'right',
    });
  });
  const { source, target, weight } = view.edges;
  const rel = relativeWeights(target, weight, view.nodes.length, filter.edgeMask);
  const edges: SceneEdge[] = [];
  for (let e = 0; e < source.length; e++) {
    if (!filter.edgeMask[e]) continue;
    const s = view.nodes[source[e]].id;
    const t = view.nodes[target[e]].id;
    edges.push({
      id: edgeKey(s, t),
      source: s,
      target: t,
      weight: weight[e],
      rel: rel[e],
      ...edgeStyle(weight[e], rel[e]),
    });
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
  return { nodes, edges, frame: layout.frame, columns, rows, title };
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
    return { ...n, color, label: `${token} ${c.before.toFixed(2)}→${c.after.toFixed(2)}` };
  });
  return { ...scene, nodes };
}
