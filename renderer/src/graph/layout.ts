/**
 * The fixed layered layout of an attribution graph: x = token position (columns), y = layer
 * (embeddings at the bottom, logits at the top). Nodes of one (position, layer) cell are
 * spread sideways, most influential first (features, then the error node); logits are ordered
 * by probability. Column widths follow the busiest cell of each column, inside a frame whose
 * size depends only on the number of layers and positions, so a re-pruned view keeps the
 * same frame (the custom bounding box) and the camera does not jump.
 */
import type { GraphView, ViewNode } from '../api/types.ts';

export interface Point {
  x: number;
  y: number;
}

export interface Frame {
  width: number;
  height: number;
  /** Bounding box for sigma's setCustomBBox. */
  bbox: { x: [number, number]; y: [number, number] };
}

export interface Layout {
  positions: Map<string, Point>;
  frame: Frame;
  /** Centre x of every token column, for column labels and exports. */
  columnX: number[];
  /** y of every row: index 0 = embeddings, 1..nLayers = layers, nLayers + 1 = logits. */
  rowY: number[];
}

export const ROW_HEIGHT = 100;
const MIN_COLUMN_WEIGHT = 2;

/** Row index of a node: tokens 0, layer l → l + 1, logits nLayers + 1. */
export function rowOf(n: ViewNode, nLayers: number): number {
  if (n.kind === 'token') return 0;
  if (n.kind === 'logit') return nLayers + 1;
  return Math.min(Math.max(n.layer, 0), nLayers - 1) + 1;
}

export function frameOf(nLayers: number, nPositions: number): Frame {
  const height = (nLayers + 1) * ROW_HEIGHT;
  // Wide enough that every column has room, never narrower than ~1.6× the height (a pane's shape).
  const width = Math.max(height * 1.6, nPositions * 90);
  const padX = width * 0.04;
  const padY = ROW_HEIGHT * 0.6;
  return { width, height, bbox: { x: [-padX, width + padX], y: [-padY, height + padY] } };
}

function cellOrder(a: ViewNode, b: ViewNode): number {
  if (a.kind === 'logit' && b.kind === 'logit') return (b.probability ?? 0) - (a.probability ?? 0);
  const ka = a.kind === 'error' ? 1 : 0;
  const kb = b.kind === 'error' ? 1 : 0;
  if (ka !== kb) return ka - kb;
  const d = (a.influence ?? 1) - (b.influence ?? 1);
  return d !== 0 ? d : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Lays out the union of the nodes of `views` (views of one trace: panes at different
 * thresholds share positions, so the same node sits at the same place in each).
 */
export function layeredLayout(views: readonly GraphView[]): Layout {
  const first = views[0];
  const nLayers = first.nLayers;
  const T = Math.max(1, first.nPositions);
  const byId = new Map<string, ViewNode>();
  for (const v of views) for (const n of v.nodes) if (!byId.has(n.id)) byId.set(n.id, n);

  const cells = new Map<number, ViewNode[]>();
  const rows = nLayers + 2;
  for (const n of byId.values()) {
    const p = Math.min(Math.max(n.position, 0), T - 1);
    const key = p * rows + rowOf(n, nLayers);
    let c = cells.get(key);
    if (!c) {
      c = [];
      cells.set(key, c);
    }
    c.push(n);
  }
  const weight = new Array<number>(T).fill(MIN_COLUMN_WEIGHT);
  for (const [key, c] of cells) {
    const p = Math.floor(key / rows);
    weight[p] = Math.max(weight[p], Math.sqrt(c.length) * 2, Math.min(c.length, 4));
  }
  const frame = frameOf(nLayers, T);
  const totalW = weight.reduce((a, b) => a + b, 0);
  const columnStart: number[] = [];
  const columnW: number[] = [];
  let acc = 0;
  for (let p = 0; p < T; p++) {
    columnStart.push((acc / totalW) * frame.width);
    columnW.push((weight[p] / totalW) * frame.width);
    acc += weight[p];
  }
  const columnX = columnStart.map((s, p) => s + columnW[p] / 2);
  const rowY = Array.from({ length: rows }, (_, r) => (r / (rows - 1)) * frame.height);

  const positions = new Map<string, Point>();
  for (const [key, c] of cells) {
    const p = Math.floor(key / rows);
    const r = key % rows;
    c.sort(cellOrder);
    const usable = columnW[p] * 0.86;
    // Logits carry always-on labels: give them more room.
    const maxStep = r === rows - 1 ? ROW_HEIGHT * 1.1 : ROW_HEIGHT * 0.55;
    const step = c.length > 1 ? Math.min(usable / (c.length - 1), maxStep) : 0;
    const span = step * (c.length - 1);
    // Dense cells are staggered over two sub-rows so neighbouring glyphs do not overlap.
    const stagger = step < ROW_HEIGHT * 0.12 && c.length > 6 ? ROW_HEIGHT * 0.14 : 0;
    c.forEach((n, i) => {
      positions.set(n.id, {
        x: columnX[p] - span / 2 + i * step,
        y: rowY[r] + (stagger && r > 0 && r <= nLayers ? (i % 2 === 0 ? -stagger : stagger) : 0),
      });
    });
  }
  return { positions, frame, columnX, rowY };
}
