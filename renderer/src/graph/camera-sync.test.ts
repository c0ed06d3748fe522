import { describe, expect, it } from 'vitest';
import { atIndex, fractionalIndex, mapCamera } from './camera-sync.ts';

describe('camera sync by graph coordinates', () => {
  it('fractional indices along lines, and back', () => {
    const lines = [0, 10, 40];
    expect(fractionalIndex(5, lines)).toBe(0.5);
    expect(fractionalIndex(25, lines)).toBe(1.5);
    expect(fractionalIndex(70, lines)).toBe(3); // extrapolated with the last spacing
    expect(fractionalIndex(-5, lines)).toBe(-0.5);
    for (const v of [-5, 0, 5, 10, 25, 40, 70])
      expect(atIndex(fractionalIndex(v, lines), lines)).toBeCloseTo(v, 12);
  });

  it('maps the centre to the same position and layer of another frame; the zoom stays relative to the fit', () => {
    // A: 3 columns in [0, 300] × rows at 0/100; B: wider, uneven columns, rows at 0/200.
    const a = {
      frame: { bbox: { x: [0, 300] as [number, number], y: [0, 100] as [number, number] } },
      columns: [{ x: 50 }, { x: 150 }, { x: 250 }],
      rows: [{ y: 0 }, { y: 100 }],
    };
    const b = {
      frame: { bbox: { x: [0, 600] as [number, number], y: [0, 200] as [number, number] } },
      columns: [{ x: 20 }, { x: 100 }, { x: 500 }],
      rows: [{ y: 0 }, { y: 200 }],
    };
    // Fitted (centre, ratio 1) stays fitted.
    const fit = mapCamera({ x: 0.5, y: 0.5, ratio: 1, angle: 0 }, a, b);
    expect(fit.ratio).toBe(1);
    // A's centre x = 150 = column 1 → B's column 1 at x = 100; y = 50 (half way) → B's y = 100.
    expect(fit.x).toBeCloseTo(0.5 + (100 - 300) / 600, 12);
    expect(fit.y).toBeCloseTo(0.5, 12);
    // Looking at A's column 2 → B's column 2.
    const right = mapCamera({ x: 0.5 + (250 - 150) / 300, y: 0.5, ratio: 0.3, angle: 0 }, a, b);
    expect(right.x).toBeCloseTo(0.5 + (500 - 300) / 600, 12);
    expect(right.ratio).toBe(0.3);
    // The same frame maps to itself.
    const same = mapCamera({ x: 0.37, y: 0.61, ratio: 0.5, angle: 0 }, a, a);
    expect(same.x).toBeCloseTo(0.37, 12);
    expect(same.y).toBeCloseTo(0.61, 12);
  });
});
