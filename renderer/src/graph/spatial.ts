/**
 * A uniform grid over node positions, for picking on the CPU: the node under the pointer is
 * found from the few cells around it, never by reading pixels back from the GPU (a read-back
 * stalls the pipeline on every mouse move).
 */
export class GridIndex {
  private readonly cells = new Map<number, number[]>();
  private readonly x0: number;
  private readonly y0: number;
  private readonly cols: number;

  /** Points (xs[i], ys[i]) bucketed into square cells of side `cell`. */
  constructor(
    readonly xs: ArrayLike<number>,
    readonly ys: ArrayLike<number>,
    readonly cell: number,
  ) {
    if (!(cell > 0)) throw new Error(`GridIndex: cell size must be positive, got ${cell}`);
    let x0 = Number.POSITIVE_INFINITY;
    let y0 = Number.POSITIVE_INFINITY;
    let x1 = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < xs.length; i++) {
      x0 = Math.min(x0, xs[i]);
      y0 = Math.min(y0, ys[i]);
      x1 = Math.max(x1, xs[i]);
    }
    this.x0 = Number.isFinite(x0) ? x0 : 0;
    this.y0 = Number.isFinite(y0) ? y0 : 0;
    this.cols = Number.isFinite(x1) ? Math.floor((x1 - this.x0) / cell) + 1 : 1;
    for (let i = 0; i < xs.length; i++) {
      const k = this.key(Math.floor((xs[i] - this.x0) / cell), Math.floor((ys[i] - this.y0) / cell));
      const c = this.cells.get(k);
      if (c) c.push(i);
      else this.cells.set(k, [i]);
    }
  }

  private key(cx: number, cy: number): number {
    return cy * this.cols + cx;
  }

  /**
   * The point nearest to (x, y) that `within(i, distance)` accepts (each point's own hit
   * radius), looking `radius` around; -1 when none.
   */
  nearest(x: number, y: number, radius: number, within: (i: number, d: number) => boolean): number {
    const c = this.cell;
    const cx0 = Math.max(0, Math.floor((x - radius - this.x0) / c));
    const cx1 = Math.min(this.cols - 1, Math.floor((x + radius - this.x0) / c));
    const cy0 = Math.floor((y - radius - this.y0) / c);
    const cy1 = Math.floor((y + radius - this.y0) / c);
    let best = -1;
    let bestD = Number.POSITIVE_INFINITY;
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const list = this.cells.get(this.key(cx, cy));
        if (!list) continue;
        for (const i of list) {
          const d = Math.hypot(this.xs[i] - x, this.ys[i] - y);
          if (d < bestD && within(i, d)) {
            best = i;
            bestD = d;
          }
        }
      }
    }
    return best;
  }
}

/** Distance from (px, py) to the segment (ax, ay)–(bx, by). */
export function segmentDistance(
  px: number,
  py: number,
  ax: number,
  ay: number,
  bx: number,
  by: number,
): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}
