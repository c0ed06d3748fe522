/**
 * The main window's size, position and maximized state, remembered across runs in
 * `<userData>/window-state.json`. A saved position is used only while it is still on one of the
 * displays (a monitor may have been unplugged); otherwise the window is centred at its size.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Rectangle } from 'electron';

export interface WindowState {
  x?: number;
  y?: number;
  width: number;
  height: number;
  maximized: boolean;
}

export const DEFAULT_WINDOW_STATE: WindowState = { width: 1440, height: 900, maximized: false };
export const MIN_WIDTH = 800;
export const MIN_HEIGHT = 560;
export const STATE_FILE = 'window-state.json';

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/** How much of `r` (px²) lies inside `area`. */
function overlap(r: Rectangle, area: Rectangle): number {
  const w = Math.min(r.x + r.width, area.x + area.width) - Math.max(r.x, area.x);
  const h = Math.min(r.y + r.height, area.y + area.height) - Math.max(r.y, area.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * A saved state made safe: sizes clamped to [min, the largest display], the position kept only
 * when at least a 200×100 piece of the window's top shows on a display.
 */
export function sanitizeWindowState(raw: unknown, workAreas: Rectangle[]): WindowState {
  if (typeof raw !== 'object' || raw === null) return { ...DEFAULT_WINDOW_STATE };
  const r = raw as Record<string, unknown>;
  const maxW = Math.max(MIN_WIDTH, ...workAreas.map((a) => a.width));
  const maxH = Math.max(MIN_HEIGHT, ...workAreas.map((a) => a.height));
  const width = isInt(r.width) ? Math.min(Math.max(r.width, MIN_WIDTH), maxW) : DEFAULT_WINDOW_STATE.width;
  const height = isInt(r.height)
    ? Math.min(Math.max(r.height, MIN_HEIGHT), maxH)
    : DEFAULT_WINDOW_STATE.height;
  const state: WindowState = { width, height, maximized: r.maximized === true };
  if (isInt(r.x) && isInt(r.y)) {
    const titleBar: Rectangle = { x: r.x, y: r.y, width: Math.min(width, 200), height: 100 };
    if (workAreas.some((a) => overlap(titleBar, a) >= Math.min(width, 200) * 100 * 0.99)) {
      state.x = r.x;
      state.y = r.y;
    }
  }
  return state;
}

export function loadWindowState(dir: string, workAreas: Rectangle[]): WindowState {
  try {
    return sanitizeWindowState(JSON.parse(fs.readFileSync(path.join(dir, STATE_FILE), 'utf8')), workAreas);
  } catch {
    return { ...DEFAULT_WINDOW_STATE };
  }
}

export function saveWindowState(dir: string, state: WindowState): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, STATE_FILE);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(state));
    fs.renameSync(`${file}.tmp`, file);
  } catch {
    // Not worth failing the quit for.
  }
}

/** The state of a window as it is now (its normal bounds when maximized). */
export function captureWindowState(win: {
  getNormalBounds(): Rectangle;
  isMaximized(): boolean;
}): WindowState {
  const b = win.getNormalBounds();
  return { x: b.x, y: b.y, width: b.width, height: b.height, maximized: win.isMaximized() };
}
