/**
 * The layered layout of an attribution graph: x = token position (columns), y = layer
 * (embeddings at the bottom, logits at the top, one row per layer).
 *
 * - Column widths follow content: a column is as wide as its busiest cell needs (one slot per
 *   node, growing more slowly past 20 nodes), so busy positions get room and quiet ones do not.
 * - Positions with no feature or error node ("empty") collapse to a narrow column, unless the
 *   caller asks to keep them (`collapseEmpty: false`).
 * - The frame fits the window: the row height is chosen so that the frame has the aspect ratio
 *   of the pane (`aspect` = width / height), so a 40-token prompt fills the pane instead of
 *   being a thin strip.
 * - Nodes of one (position, layer) cell are spread sideways, most influential first (features,
 *   then the error node; logits by probability). Dense cells are
 *   jittered vertically inside their row (a low-discrepancy sequence, so it reads as one band,
 *   never as sub-rows that look like extra layers).
 *
 * `layeredLayout` places the union of the views of one trace (compare panes at different
 * thresholds share positions); `arrangeLayout` re-places a layout for other options in O(N)
 * without re-sorting (the collapse toggle, a pane resize).
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

/** Where a node sits in the grid, independent of the column widths and row height. */
export interface Slot {
  column: number;
  row: number;
  /** Rank in its cell (0 = first) and the cell's size. */
  rank: number;
  count: number;
}

export interface LayoutOptions {
  /** Collapse positions without feature or error nodes (default true). */
  collapseEmpty?: boolean;
  /** Width / height of the pane the frame should fill (default 1.6). */
  aspect?: number;
  /**
   * Width of the pane in px (0: unknown). Cells whose nodes would sit closer than ~9 px on
   * screen are jittered inside their row band even when the layout units have room.
   */
  widthPx?: number;
}

export interface Layout {
  positions: Map<string, Point>;
  frame: Frame;
  /** Centre x of every token column, for the token axis and exports. */
  columnX: number[];
  /** Width of every token column. */
  columnWidth: number[];
  /** Positions whose column holds no feature or error node. */
  empty: boolean[];
  /** y of every row: index 0 = embeddings, 1..nLayers = layers, nLayers + 1 = logits. */
  rowY: number[];
  nLayers: number;
  nPositions: number;
  slots: Map<string, Slot>;
  /** Busiest cell of every column (logits count triple: their labels are always drawn). */
  load: number[];
  options: Required<LayoutOptions>;
}

/** Row pitch of the frame used when no aspect is given (and by the subgraph). */
export const ROW_HEIGHT = 100;
/** Horizontal room per node of a cell. */
export const SLOT = 14;
const MIN_COLUMN = 56;
const COLLAPSED_COLUMN = 18;
const LOGIT_SLOTS = 5;
const DEFAULT_ASPECT = 1.6;

/** Row index of a node: tokens 0, layer l → l + 1, logits nLayers + 1. */
export function rowOf(n: ViewNode, nLayers: number): number {
  if (n.kind === 'token') return 0;
  if (n.kind === 'logit') return nLayers + 1;
  return Math.min(Math.max(n.layer, 0), nLayers - 1) + 1;
}

/** A frame of fixed shape for nLayers × nPositions (the subgraph's layout uses it). */
export function frameOf(nLayers: number, nPositions: number): Frame {
  const height = (nLayers + 1) * ROW_HEIGHT;
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

/** Width a column needs for a busiest cell of `load` nodes. */
export function columnWidthFor(load: number): number {
  const eff = load <= 20 ? load : 20 + 4 * Math.sqrt(load - 20);
  return Math.max(MIN_COLUMN, eff * SLOT + SLOT);
}

/** Vertical jitter of rank i in a cell, in [-0.5, 0.5) (golden-ratio sequence: evenly spread). */
export function jitterOf(rank: number): number {
  const v = (rank * 0.6180339887498949) % 1;
  return v - 0.5;
}

/**
 * Lays out the union of the nodes of `views` (views of one trace: panes at different
 * thresholds share positions, so the same node sits at the same place in each).
 */
export function layeredLayout(views: readonly GraphView[], opts: LayoutOptions = {}): Layout {
  const first = views[0];
  const nLayers = first.nLayers;
  const T = Math.max(1, first.nPositions);
  const byId = new Map<string, ViewNode>();
  for (const v of views) for (const n of v.nodes) if (!byId.has(n.id)) byId.set(n.id, n);

  const rows = nLayers + 2;
  const cells = new Map<number, ViewNode[]>();
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
  const load = new Array<number>(T).fill(0);
  const empty = new Array<boolean>(T).fill(true);
  const slots = new Map<string, Slot>();
  for (const [key, c] of cells) {
    const p = Math.floor(key / rows);
    const r = key % rows;
    if (r > 0 && r < rows - 1) empty[p] = false;
    load[p] = Math.max(load[p], r === rows - 1 ? c.length * LOGIT_SLOTS : c.length);
    c.sort(cellOrder);
    c.forEach((n, i) => {
      slots.set(n.id, { column: p, row: r, rank: i, count: c.length });
    });
  }
  return arrangeLayout({ slots, load, empty, nLayers, nPositions: T }, opts);
}

/** Places slotted nodes for the given options (O(N): no sorting). */
export function arrangeLayout(
  base: Pick<Layout, 'slots' | 'load' | 'empty' | 'nLayers' | 'nPositions'>,
  opts: LayoutOptions = {},
): Layout {
  const options: Required<LayoutOptions> = {
    collapseEmpty: opts.collapseEmpty ?? true,
    aspect: Math.min(8, Math.max(0.25, opts.aspect ?? DEFAULT_ASPECT)),
    widthPx: Math.max(0, opts.widthPx ?? 0),
  };
  const { slots, load, empty, nLayers, nPositions: T } = base;
  const rows = nLayers + 2;
  const columnWidth = load.map((l, p) =>
    empty[p] && options.collapseEmpty ? COLLAPSED_COLUMN : columnWidthFor(l),
  );
  const columnX: number[] = [];
  let acc = 0;
  for (let p = 0; p < T; p++) {
    columnX.push(acc + columnWidth[p] / 2);
    acc += columnWidth[p];
  }
  const width = Math.max(acc, MIN_COLUMN);
  // Row pitch so the frame (with its padding) has the pane's aspect ratio.
  const padX = width * 0.015;
  const rowH = Math.max(4, (width + 2 * padX) / options.aspect / (rows - 1 + 1.4));
  const height = (rows - 1) * rowH;
  const padY = rowH * 0.7;
  const frame: Frame = { width, height, bbox: { x: [-padX, width + padX], y: [-padY, height + padY] } };
  const rowY = Array.from({ length: rows }, (_, r) => r * rowH);
  const pxPerUnit = options.widthPx > 0 ? options.widthPx / (width + 2 * padX) : 0;

  const positions = new Map<string, Point>();
  for (const [id, s] of slots) {
    const w = columnWidth[s.column];
    const usable = w - SLOT;
    // Logits carry always-on labels: give them more room.
    const maxStep = s.row === rows - 1 ? SLOT * LOGIT_SLOTS : SLOT * 1.6;
    const step = s.count > 1 ? Math.min(usable / (s.count - 1), maxStep) : 0;
    const span = step * (s.count - 1);
    // Cells denser than a slot per node (in units, or ~9 px on screen) spread vertically
    // inside their row band.
    const room = pxPerUnit > 0 ? Math.min(step / SLOT, (step * pxPerUnit) / 9) : step / SLOT;
    const crowd = s.count > 1 && room < 0.9 && s.row > 0 && s.row < rows - 1;
    const amp = crowd ? Math.min(0.6, 0.3 + 0.3 * (1 - room)) * rowH : 0;
    positions.set(id, {
      x: columnX[s.column] - span / 2 + s.rank * step,
      y: rowY[s.row] + (crowd ? jitterOf(s.rank) * amp : 0),
    });
  }
  return {
    positions,
    frame,
    columnX,
    columnWidth,
    empty,
    rowY,
    nLayers,
    nPositions: T,
    slots,
    load,
    options,
  };
}
