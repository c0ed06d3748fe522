/**
 * Camera sync by graph coordinates between compare panes. Sigma's camera works in each graph's
 * normalized frame (its bounding box scaled to the unit square by its longer side), so one
 * camera state shows different regions of graphs whose frames differ (other prompt lengths,
 * column widths that follow content, collapsed positions). The centre is relayed as a (token
 * position, layer row) pair instead, read off each pane's own column and row lines, and the
 * zoom relative to each pane's own fit: every pane stays fitted to its own graph at rest, and
 * zooming one shows the same positions and layers in the others.
 */
import type { CameraState } from 'sigma/types';
import type { Frame } from './layout.ts';

/** What the mapping reads of a scene. */
export interface CameraFrame {
  frame: Pick<Frame, 'bbox'>;
  columns: ReadonlyArray<{ x: number }>;
  rows: ReadonlyArray<{ y: number }>;
}

function normSpan(b: Frame['bbox']): { cx: number; cy: number; span: number } {
  return {
    cx: (b.x[0] + b.x[1]) / 2,
    cy: (b.y[0] + b.y[1]) / 2,
    span: Math.max(b.x[1] - b.x[0], b.y[1] - b.y[0]) || 1,
  };
}

/** Fractional index of v along increasing `lines` (linear between lines, extrapolated past the ends). */
export function fractionalIndex(v: number, lines: readonly number[]): number {
  const n = lines.length;
  if (n < 2) return 0;
  let k = 0;
  while (k < n - 2 && v > lines[k + 1]) k++;
  const d = lines[k + 1] - lines[k] || 1;
  return k + (v - lines[k]) / d;
}

/** The value at fractional index f along `lines` (the inverse of fractionalIndex). */
export function atIndex(f: number, lines: readonly number[]): number {
  const n = lines.length;
  if (n === 0) return 0;
  if (n === 1) return lines[0];
  const k = Math.min(Math.max(Math.floor(f), 0), n - 2);
  return lines[k] + (f - k) * (lines[k + 1] - lines[k]);
}

/** The camera of `to` that looks at the positions and layers `state` shows in `from`. */
export function mapCamera(state: CameraState, from: CameraFrame, to: CameraFrame): CameraState {
  const a = normSpan(from.frame.bbox);
  const b = normSpan(to.frame.bbox);
  const gx = a.cx + (state.x - 0.5) * a.span;
  const gy = a.cy + (state.y - 0.5) * a.span;
  const fromCols = from.columns.map((c) => c.x);
  const fromRows = from.rows.map((r) => r.y);
  const tx =
    to.columns.length && fromCols.length > 1
      ? atIndex(
          fractionalIndex(gx, fromCols),
          to.columns.map((c) => c.x),
        )
      : b.cx + (gx - a.cx);
  const ty =
    to.rows.length && fromRows.length > 1
      ? atIndex(
          fractionalIndex(gy, fromRows),
          to.rows.map((r) => r.y),
        )
      : b.cy + (gy - a.cy);
  return {
    x: 0.5 + (tx - b.cx) / b.span,
    y: 0.5 + (ty - b.cy) / b.span,
    ratio: state.ratio,
    angle: state.angle,
  };
}
