/**
 * The pinned subgraph: pinned nodes, with supernodes (groups) drawn as one node whose edges
 * are the sums of their members' edges, on a compact layered grid (only the layers and
 * positions that hold pinned nodes), with saved positions (dragged by the user) taking
 * precedence. Labels are always drawn.
 */
import type { Annotations, GraphView, ViewNode } from '../api/types.ts';
import { frameOf, rowOf } from './layout.ts';
import { edgeKey, edgeStyle, type Scene, type SceneEdge, type SceneNode } from './scene.ts';
import { COLORS, GLYPH, nodeColor, nodeLabel } from './style.ts';

export const supernodeKey = (i: number) => `supernode:${i}`;

export interface SubgraphItem {
  key: string;
  label: string;
  members: ViewNode[];
  row: number;
  column: number;
}

export function subgraphItems(view: GraphView, ann: Annotations): SubgraphItem[] {
  const byId = new Map(view.nodes.map((n) => [n.id, n]));
  const grouped = new Map<string, number>();
  ann.supernodes.forEach((s, i) => {
    for (const id of s.nodeIds) grouped.set(id, i);
  });
  const items: SubgraphItem[] = [];
  ann.supernodes.forEach((s, i) => {
    const members = s.nodeIds.map((id) => byId.get(id)).filter((n): n is ViewNode => !!n);
    if (members.length === 0) return;
    const rows = members.map((n) => rowOf(n, view.nLayers));
    items.push({
      key: supernodeKey(i),
      label: s.label || `group ${i + 1}`,
      members,
      row: Math.round(rows.reduce((a, b) => a + b, 0) / rows.length),
      column: Math.round(members.reduce((a, n) => a + n.position, 0) / members.length),
    });
  });
  for (const id of ann.pinned) {
    if (grouped.has(id)) continue;
    const n = byId.get(id);
    if (!n) continue;
    items.push({
      key: n.id,
      label: nodeLabel(n),
      members: [n],
      row: rowOf(n, view.nLayers),
      column: n.position,
    });
  }
  return items;
}

export function subgraphScene(view: GraphView, ann: Annotations, title: string): Scene {
  const items = subgraphItems(view, ann);
  const rows = [...new Set(items.map((i) => i.row))].sort((a, b) => a - b);
  const cols = [...new Set(items.map((i) => i.column))].sort((a, b) => a - b);
  const frame = frameOf(Math.max(1, rows.length - 1), Math.max(1, cols.length));
  const colX = (c: number) => ((cols.indexOf(c) + 0.5) / Math.max(1, cols.length)) * frame.width;
  const rowY = (r: number) =>
    rows.length > 1 ? (rows.indexOf(r) / (rows.length - 1)) * frame.height : frame.height / 2;
  const cells = new Map<string, SubgraphItem[]>();
  for (const it of items) {
    const k = `${it.row}:${it.column}`;
    const c = cells.get(k) ?? [];
    c.push(it);
    cells.set(k, c);
  }
  const cellW = frame.width / Math.max(1, cols.length);
  const nodes: SceneNode[] = [];
  const itemOf = new Map<string, string>();
  for (const c of cells.values()) {
    const step = c.length > 1 ? Math.min((cellW * 0.8) / (c.length - 1), 260) : 0;
    c.forEach((it, i) => {
      for (const m of it.members) itemOf.set(m.id, it.key);
      const saved = ann.layout[it.key];
      const first = it.members[0];
      const isGroup = it.key.startsWith('supernode:');
      const kind = isGroup ? 'supernode' : first.kind;
      nodes.push({
        id: it.key,
        kind,
        x: saved?.x ?? colX(it.column) - (step * (c.length - 1)) / 2 + i * step,
        y: saved?.y ?? rowY(it.row) + (c.length > 3 ? (i % 2 ? 18 : -18) : 0),
        size: isGroup ? 13 : kind === 'error' ? 8 : 10,
        glyph: isGroup ? 'circle' : GLYPH[first.kind],
        color: isGroup ? COLORS.supernode : nodeColor(first.kind),
        label: isGroup ? `${it.label} (${it.members.length})` : it.label,
        labelMode: 'always',
        labelPos: kind === 'token' ? 'below' : kind === 'logit' ? 'above' : 'right',
      });
    });
  }
  const sums = new Map<string, { s: string; t: string; w: number }>();
  const { source, target, weight } = view.edges;
  for (let e = 0; e < source.length; e++) {
    const s = itemOf.get(view.nodes[source[e]].id);
    const t = itemOf.get(view.nodes[target[e]].id);
    if (!s || !t || s === t) continue;
    const k = edgeKey(s, t);
    const cur = sums.get(k);
    if (cur) cur.w += weight[e];
    else sums.set(k, { s, t, w: weight[e] });
  }
  const inTotal = new Map<string, number>();
  for (const v of sums.values()) inTotal.set(v.t, (inTotal.get(v.t) ?? 0) + Math.abs(v.w));
  const edges: SceneEdge[] = [];
  for (const [k, v] of sums) {
    const rel = Math.abs(v.w) / (inTotal.get(v.t) || 1);
    edges.push({ id: k, source: v.s, target: v.t, weight: v.w, rel, ...edgeStyle(v.w, rel) });
  }
  return {
    nodes,
    edges,
    frame,
    columns: cols.map((c) => ({ x: colX(c), label: view.promptTokens[c] ?? String(c) })),
    rows: rows.map((r) => ({
      y: rowY(r),
      label: r === 0 ? 'Emb' : r === view.nLayers + 1 ? 'Logits' : `L${r - 1}`,
    })),
    title,
  };
}
