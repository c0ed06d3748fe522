import { describe, expect, it } from 'vitest';
import { applyActivation } from '../../../electron/engine/transcoders/activation.ts';

const f32 = (a: number[]) => Float32Array.from(a);

describe('applyActivation', () => {
  it('ReLU', () => {
    expect(Array.from(applyActivation(f32([-1, 0, 2, -0.5, 3, 0.25]), 2, 3, { kind: 'relu' }))).toEqual([
      0, 0, 2, 0, 3, 0.25,
    ]);
  });

  it('JumpReLU keeps pre where pre > θ (strictly), per feature', () => {
    const th = f32([0.5, -1, 1]);
    const pre = f32([0.5, -0.5, 2, 0.75, -1, 1]);
    // t0: 0.5 !> 0.5 → 0; -0.5 > -1 → -0.5 (pre·[pre > θ], negative kept); 2 > 1 → 2
    // t1: 0.75 > 0.5 → 0.75; -1 !> -1 → 0; 1 !> 1 → 0
    expect(Array.from(applyActivation(pre, 2, 3, { kind: 'jumprelu' }, th))).toEqual([
      0, -0.5, 2, 0.75, 0, 0,
    ]);
    expect(() => applyActivation(pre, 2, 3, { kind: 'jumprelu' })).toThrow(/threshold/);
  });

  it('TopK keeps the k largest per token, then ReLU', () => {
    const pre = f32([1, 5, 3, 4, -2, /* t1 */ -3, -1, 0.5, -2, -4]);
    const out = applyActivation(pre, 2, 5, { kind: 'topk', k: 2 });
    expect(Array.from(out)).toEqual([
      0, 5, 0, 4, 0, /* t1: keeps 0.5 and -1, ReLU zeroes -1 */ 0, 0, 0.5, 0, 0,
    ]);
  });

  it('TopK ties go to the lower index', () => {
    const pre = f32([2, 7, 2, 2, 1]);
    expect(Array.from(applyActivation(pre, 1, 5, { kind: 'topk', k: 2 }))).toEqual([2, 7, 0, 0, 0]);
    expect(Array.from(applyActivation(pre, 1, 5, { kind: 'topk', k: 3 }))).toEqual([2, 7, 2, 0, 0]);
    const all = f32([3, 3, 3, 3]);
    expect(Array.from(applyActivation(all, 1, 4, { kind: 'topk', k: 1 }))).toEqual([3, 0, 0, 0]);
  });

  it('TopK with k ≥ d_t is ReLU, k = 0 is all zero', () => {
    const pre = f32([1, -2, 3]);
    expect(Array.from(applyActivation(pre, 1, 3, { kind: 'topk', k: 5 }))).toEqual([1, 0, 3]);
    expect(Array.from(applyActivation(pre, 1, 3, { kind: 'topk', k: 0 }))).toEqual([0, 0, 0]);
  });

  it('checks the block size', () => {
    expect(() => applyActivation(f32([1, 2, 3]), 2, 2, { kind: 'relu' })).toThrow(/expected T·d_t = 4/);
  });
});
