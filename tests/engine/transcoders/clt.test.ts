import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileReader } from '../../../electron/engine/checkpoint/file-reader.ts';
import { BaseTensorStore } from '../../../electron/engine/checkpoint/store-base.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { tempDir, writeCltFolder } from './helpers.ts';

let root: string;
beforeAll(() => {
  root = tempDir('tc-clt-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('CLT decoder rows', () => {
  it('reads [n, L−l, d] with slot j = output layer l+j', () => {
    const L = 4;
    const d = 3;
    const dT = 5;
    const dir = path.join(root, 'rows');
    fs.mkdirSync(dir);
    const params = writeCltFolder(dir, { nLayers: L, d, dT, dtype: 'BF16' });
    const set = loadTranscoderSet(dir);
    for (let l = 0; l < L; l++) {
      const slots = L - l;
      const feats = [4, 1, 4];
      const got = set.decoderRowsFloat32(l, feats);
      expect(got.length).toBe(feats.length * slots * d);
      feats.forEach((f, i) => {
        for (let j = 0; j < slots; j++) {
          // W_dec_l[f, j, :] writes layer l+j
          const want = params[l].W_dec.subarray((f * slots + j) * d, (f * slots + j + 1) * d);
          expect(got.subarray((i * slots + j) * d, (i * slots + j + 1) * d)).toEqual(want);
        }
      });
    }
    set.close();
  });

  it('reads only the requested rows, never the whole decoder', () => {
    const dir = path.join(root, 'lazy');
    fs.mkdirSync(dir);
    writeCltFolder(dir, { nLayers: 2, d: 4, dT: 64, dtype: 'F32' });
    const set = loadTranscoderSet(dir);
    const whole = vi.spyOn(BaseTensorStore.prototype, 'readFloat32');
    // every byte read from a file goes through FileReader.readInto(target, offset, length, …)
    const ranges = vi.spyOn(FileReader.prototype, 'readInto');
    try {
      set.decoderRowsFloat32(0, [10, 40]);
      expect(whole).not.toHaveBeenCalled();
      const bytes = ranges.mock.calls.reduce((s, c) => s + (c[2] as number), 0);
      expect(bytes).toBe(2 * 2 * 4 * 4); // 2 rows × 2 slots × d=4 × f32
    } finally {
      whole.mockRestore();
      ranges.mockRestore();
      set.close();
    }
  });

  it('rejects feature indices outside [0, d_t)', () => {
    const dir = path.join(root, 'range');
    fs.mkdirSync(dir);
    writeCltFolder(dir, { nLayers: 2, dtype: 'F32' });
    const set = loadTranscoderSet(dir);
    expect(() => set.decoderRowsFloat32(1, [5])).toThrow(/out of range/);
    expect(() => set.decoderRowsFloat32(2, [0])).toThrow(/layer 2 out of range/);
    set.close();
  });
});
