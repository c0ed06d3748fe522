/** encoderRowsFloat32 reads the same rows encoderFloat32 decodes, whatever the storage orientation. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { fixturePath } from '../../fixtures/tiny-checkpoints.ts';

describe('encoderRowsFloat32', () => {
  it.each([
    ['tiny-llama', 'plt-skip'],
    ['tiny-gemma2', 'gemmascope'],
    ['tiny-gemma2', 'clt'],
  ] as const)('%s/%s', (fixture, tc) => {
    const set = loadTranscoderSet(path.join(fixturePath(fixture), 'transcoders', tc));
    try {
      const transposedSomewhere = Array.from(
        { length: set.nLayers },
        (_, l) => set.encoderInfo(l).encoderTransposed,
      );
      if (tc !== 'clt') expect(transposedSomewhere).toContain(true);
      const d = set.dModel;
      for (let l = 0; l < set.nLayers; l++) {
        const full = set.encoderFloat32(l);
        const idx = [set.dTranscoderPerLayer[l] - 1, 0, 7];
        const rows = set.encoderRowsFloat32(l, idx);
        idx.forEach((f, k) => {
          expect(Array.from(rows.subarray(k * d, (k + 1) * d))).toEqual(
            Array.from(full.subarray(f * d, (f + 1) * d)),
          );
        });
      }
      expect(() => set.encoderRowsFloat32(0, [set.dTranscoderPerLayer[0]])).toThrow(/out of range/);
    } finally {
      set.close();
    }
  });
});
