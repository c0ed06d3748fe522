/**
 * Label placement that never overlaps: candidates are taken in priority order (forced ones
 * first: hovered, selected, pinned, logits; then the most influential), and a label is drawn
 * only when its box misses every box already placed and every node glyph on screen (a grid of
 * boxes keeps the test cheap). A free label tries its preferred side, then right, left, above
 * and below. Boxes are in screen pixels, so zooming in spreads nodes apart and more labels fit.
 */
export interface LabelCandidate {
  id: string;
  /** The node's centre on screen (px) and its drawn radius. */
  x: number;
  y: number;
  radius: number;
  text: string;
  position: 'right' | 'above' | 'below';
  /** Higher first. */
  priority: number;
  /** Placed whatever the overlap (its box still blocks later ones). */
  forced?: boolean;
}

export interface LabelBox {
  id: string;
  /** The side of the node the label went to. */
  position?: LabelCandidate['position'] | 'left';
  text?: string;
  /** Placed whatever the overlap (hovered, selected, pinned, logits). */
  forced?: boolean;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface PlaceOptions {
  /** Font size (px); the width of a label is estimated from it. Candidates with no text are obstacles only. */
  fontSize?: number;
  /** Viewport (px): labels outside it are not placed. */
  width: number;
  height: number;
  /** Most labels placed besides forced ones. */
  max?: number;
  /** Gap kept around each label (px). */
  margin?: number;
}

/** Estimated box of a label drawn next to its node (on `side`, else its own position). */
export function labelBox(
  c: LabelCandidate,
  fontSize = 11,
  margin = 2,
  side: LabelCandidate['position'] | 'left' = c.position,
): LabelBox {
  const w = c.text.length * fontSize * 0.58 + 2 * margin;
  const h = fontSize * 1.25 + 2 * margin;
  if (side === 'left') {
    const x1 = c.x - c.radius - 2;
    return { id: c.id, x0: x1 - w, x1, y0: c.y - h / 2, y1: c.y + h / 2 };
  }
  if (side === 'above') {
    const y1 = c.y - c.radius - 2;
    return { id: c.id, x0: c.x - w / 2, x1: c.x + w / 2, y0: y1 - h, y1 };
  }
  if (side === 'below') {
    const y0 = c.y + c.radius + 2;
    return { id: c.id, x0: c.x - w / 2, x1: c.x + w / 2, y0, y1: y0 + h };
  }
  const x0 = c.x + c.radius + 2;
  return { id: c.id, x0, x1: x0 + w, y0: c.y - h / 2, y1: c.y + h / 2 };
}

export const overlaps = (a: LabelBox, b: LabelBox) =>
  a.x0 < b.x1 && a.x1 > b.x0 && a.y0 < b.y1 && a.y1 > b.y0;

/** The labels to draw, greedily by priority, none overlapping another (forced ones aside). */
export function placeLabels(candidates: readonly LabelCandidate[], opts: PlaceOptions): LabelBox[] {
  const font = opts.fontSize ?? 11;
  const margin = opts.margin ?? 2;
  const max = opts.max ?? 400;
  // A flat grid of small cells over the viewport (plus a border for boxes that stick out):
  // a label box tested against a crowded region scans a few boxes per cell, not hundreds.
  const cell = 16;
  const pad = 2;
  const cols = Math.ceil(opts.width / cell) + 2 * pad + 1;
  const rows = Math.ceil(opts.height / cell) + 2 * pad + 1;
  const grid: Array<LabelBox[] | undefined> = new Array(cols * rows);
  const col = (x: number) => Math.min(cols - 1, Math.max(0, Math.floor(x / cell) + pad));
  const row = (y: number) => Math.min(rows - 1, Math.max(0, Math.floor(y / cell) + pad));
  const add = (b: LabelBox) => {
    const c1 = col(b.x1);
    const r1 = row(b.y1);
    for (let r = row(b.y0); r <= r1; r++)
      for (let c = col(b.x0); c <= c1; c++) {
        const l = grid[r * cols + c];
        if (l) l.push(b);
        else grid[r * cols + c] = [b];
      }
  };
  // Node glyphs block labels (a label never covers a node); the owner's own glyph is skipped.
  for (const c of candidates) {
    const r = c.radius + 1;
    const g = { id: c.id, x0: c.x - r, x1: c.x + r, y0: c.y - r, y1: c.y + r };
    if (g.x1 >= 0 && g.y1 >= 0 && g.x0 <= opts.width && g.y0 <= opts.height) add(g);
  }
  const blocked = (b: LabelBox, own: string) => {
    const c1 = col(b.x1);
    const r1 = row(b.y1);
    for (let r = row(b.y0); r <= r1; r++)
      for (let c = col(b.x0); c <= c1; c++) {
        const l = grid[r * cols + c];
        if (!l) continue;
        for (const o of l) if (o.id !== own && overlaps(o, b)) return true;
      }
    return false;
  };
  const order = candidates
    .filter((c) => c.text.length > 0)
    .sort((a, b) => Number(!!b.forced) - Number(!!a.forced) || b.priority - a.priority);
  const placed: LabelBox[] = [];
  let free = 0;
  for (const c of order) {
    let b = labelBox(c, font, margin);
    b.position = c.position;
    if (!c.forced) {
      if (free >= max) break;
      const sides = [
        c.position,
        ...(['right', 'left', 'above', 'below'] as const).filter((x) => x !== c.position),
      ];
      let found: LabelBox | null = null;
      for (const side of sides) {
        const t = labelBox(c, font, margin, side);
        if (t.x0 < 0 || t.y0 < 0 || t.x1 > opts.width || t.y1 > opts.height) continue;
        if (blocked(t, c.id)) continue;
        t.position = side;
        found = t;
        break;
      }
      if (!found) continue;
      b = found;
      free++;
    }
    b.text = c.text;
    if (c.forced) b.forced = true;
    add(b);
    placed.push(b);
  }
  return placed;
}
