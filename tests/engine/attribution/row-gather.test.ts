import { describe, expect, it } from 'vitest';
import { joinedWidth, rowGatherIndices } from '../../../electron/engine/attribution/row-gather.ts';
import { type SourceSpace, WriteLayerBlock } from '../../../electron/engine/attribution/sources.ts';

/**
 * A cross-layer space: 2 write layers, T = 3, features f0 (layer 0, position 1) written at both
 * layers, f1 (layer 1, position 2) at layer 1; error columns 2 + l·T + p; tokens 8..10.
 * Block columns per position: layer 0 [f0?, error, pad], layer 1 [f0?, f1?, error, pad].
 */
function space(): SourceSpace {
  const T = 3;
  const err = (l: number, p: number) => 2 + l * T + p;
  const block0 = new Int32Array(T * 3).fill(-1);
  const block1 = new Int32Array(T * 4).fill(-1);
  for (let p = 0; p < T; p++) {
    block0[p * 3 + 1] = err(0, p);
    block1[p * 4 + 2] = err(1, p);
  }
  block0[1 * 3 + 0] = 0; // f0 at layer 0, position 1
  block1[1 * 4 + 0] = 0; // f0 again at layer 1
  block1[2 * 4 + 1] = 1; // f1 at layer 1, position 2
  return {
    nActive: 2,
    featureLayer: Int32Array.from([0, 1]),
    featurePosition: Int32Array.from([1, 2]),
    featureIndex: Int32Array.from([5, 9]),
    featureActivation: Float32Array.from([1, 1]),
    errorOffset: 2,
    tokenOffset: 8,
    nColumns: 11,
    blocks: [
      // Only the columns matter here (d = 1, no vectors).
      new WriteLayerBlock(3, 1, 3, block0, new Float32Array(0), new Int32Array(0), new Float32Array(0)),
      new WriteLayerBlock(3, 1, 4, block1, new Float32Array(0), new Int32Array(0), new Float32Array(0)),
    ],
  };
}

describe('rowGatherIndices', () => {
  it('places every column at its layers’ entries in the flattened joined row, in layer order', () => {
    const s = space();
    const W = joinedWidth(s, 2);
    expect(W).toBe(3 + 4 + 1);
    const { places, indices } = rowGatherIndices(s, 3, 2);
    expect(places).toBe(2); // f0 is written at two layers
    const C = s.nColumns;
    const zero = 3 * W;
    const at = (k: number, col: number) => indices[k * C + col];
    expect([at(0, 0), at(1, 0)]).toEqual([1 * W + 0, 1 * W + 3 + 0]); // layer 0 first, then layer 1
    expect([at(0, 1), at(1, 1)]).toEqual([2 * W + 3 + 1, zero]);
    for (let p = 0; p < 3; p++) {
      expect([at(0, 2 + p), at(1, 2 + p)]).toEqual([p * W + 1, zero]); // layer 0's error
      expect([at(0, 5 + p), at(1, 5 + p)]).toEqual([p * W + 3 + 2, zero]); // layer 1's error
      expect([at(0, 8 + p), at(1, 8 + p)]).toEqual([p * W + W - 1, zero]); // token
    }
  });

  it('points columns at positions ≥ t and at layers ≥ the top at the zero', () => {
    const s = space();
    const W = joinedWidth(s, 1);
    const { places, indices } = rowGatherIndices(s, 2, 1);
    expect(places).toBe(1);
    const zero = 2 * W;
    expect(Array.from(indices)).toEqual([
      1 * W + 0, // f0 at layer 0
      zero, // f1: layer 1 is above the top
      0 * W + 1,
      1 * W + 1,
      zero, // layer 0's errors; position 2 ≥ t
      zero,
      zero,
      zero, // layer 1's errors
      0 * W + W - 1,
      1 * W + W - 1,
      zero, // tokens
    ]);
  });
});
