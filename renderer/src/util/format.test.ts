import { describe, expect, it } from 'vitest';
import { fmtProb } from './format.ts';

describe('fmtProb', () => {
  it('shows probabilities as percentages with two significant digits', () => {
    expect(fmtProb(0.0037)).toBe('0.37%');
    expect(fmtProb(0.000833)).toBe('0.083%');
    expect(fmtProb(0.37)).toBe('37%');
    expect(fmtProb(0.3749)).toBe('37%');
    expect(fmtProb(0.056)).toBe('5.6%');
    expect(fmtProb(1)).toBe('100%');
    expect(fmtProb(0.9996)).toBe('100%');
    expect(fmtProb(0)).toBe('0%');
    expect(fmtProb(null)).toBe('—');
    expect(fmtProb(Number.NaN)).toBe('—');
  });
});
