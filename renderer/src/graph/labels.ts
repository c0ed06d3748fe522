/**
 * Label placement that never overlaps: candidates are taken in priority order (forced ones
 * first: hovered, selected, pinned, logits; then the most influential), and a label is drawn
 * only when its box misses every box already placed (a grid of placed boxes keeps the test
 * cheap). Boxes are in screen pixels, so zooming in spreads nodes apart and more labels fit.
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
  text?: string;
  /** Placed whatever the overlap (hovered, selected, pinned, logits). */
  forced?: boolean;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface PlaceOptions {
  /** Font size (px); the width of a label is estimated from it. */
  fontSize?: number;
  /** Viewport (px): labels outside it are not placed. */
  width: number;
  height: number;
  /** Most labels placed besides forced ones. */
  max?: number;
  /** Gap kept around each label (px). */
  margin?: number;
}

/** Estimated box of a label drawn next to its node. */
export function labelBox(c: LabelCandidate, fontSize = 11, margin = 2): LabelBox {
  const w = c.text.length * fontSize * 0.58 + 2 * margin;
  const h = fontSize * 1.25 + 2 * margin;
  if (c.position === 'above') {
    const y1 = c.y - c.radius - 2;
    return { id: c.id, x0: c.x - w / 2, x1: c.x + w / 2, y0: y1 - h, y1 };
  }
  if (c.position === 'below') {
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
  const cell = 64;
  const grid = new Map<number, LabelBox[]>();
  const keys = (b: LabelBox, f: (k: number) => boolean): boolean => {
    for (let cy = Math.floor(b.y0 / cell); cy <= Math.floor(b.y1 / cell); cy++)
      for (let cx = Math.floor(b.x0 / cell); cx <= Math.floor(b.x1 / cell); cx++)
        if (f(cy * 100_003 + cx)) return true;
    return false;
  };
  const add = (b: LabelBox) =>
    keys(b, (k) => {
      const l = grid.get(k);
      if (l) l.push(b);
      else grid.set(k, [b]);
      return false;
    });
  const hits = (b: LabelBox) => keys(b, (k) => grid.get(k)?.some((o) => overlaps(o, b)) ?? false);
  const order = candidates
    .filter((c) => c.text.length > 0)
    .sort((a, b) => Number(!!b.forced) - Number(!!a.forced) || b.priority - a.priority);
  const placed: LabelBox[] = [];
  let free = 0;
  for (const c of order) {
    const b = labelBox(c, font, margin);
    if (!c.forced) {
      if (free >= max) break;
      if (b.x1 < 0 || b.y1 < 0 || b.x0 > opts.width || b.y0 > opts.height) continue;
      if (hits(b)) continue;
      free++;
    }
    b.text = c.text;
    if (c.forced) b.forced = true;
    add(b);
    placed.push(b);
  }
  return placed;
}
