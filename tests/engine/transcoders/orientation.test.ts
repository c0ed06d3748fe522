import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { gatherColumns, transpose } from '../../../electron/engine/transcoders/orientation.ts';
import { pltParams, tempDir, transposed, writeConfig, writeNpz, writePltFolder } from './helpers.ts';

let root: string;
beforeAll(() => {
  root = tempDir('tc-orient-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const sub = (name: string) => {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

describe('matrix orientation', () => {
  it('a transposed W_enc / W_dec gives the same encoder and decoder rows as the normal one', () => {
    const build = (name: string, o: Parameters<typeof writePltFolder>[1]) => {
      const dir = sub(name);
      writePltFolder(dir, o);
      return loadTranscoderSet(dir);
    };
    const normal = build('normal', { d: 4, dT: 7 });
    const flipped = build('flipped', { d: 4, dT: 7, transposeEnc: true, transposeDec: true });
    const encOnly = build('enc-only', { d: 4, dT: 7, transposeEnc: true });
    expect(normal.encoderInfo(0).encoderTransposed).toBe(false);
    expect(flipped.encoderInfo(0).encoderTransposed).toBe(true);
    expect(flipped.encoderInfo(0).shape).toEqual([4, 7]);
    expect(flipped.dTranscoder).toBe(7);
    expect(flipped.dModel).toBe(4);
    const feats = [6, 0, 3, 3];
    for (const l of [0, 1]) {
      expect(flipped.encoderFloat32(l)).toEqual(normal.encoderFloat32(l));
      expect(encOnly.encoderFloat32(l)).toEqual(normal.encoderFloat32(l));
      expect(flipped.decoderRowsFloat32(l, feats)).toEqual(normal.decoderRowsFloat32(l, feats));
      expect(encOnly.decoderRowsFloat32(l, feats)).toEqual(normal.decoderRowsFloat32(l, feats));
      expect(flipped.decoderRowsFloat32(l, [])).toEqual(new Float32Array(0));
    }
    for (const s of [normal, flipped, encOnly]) s.close();
  });

  it('square d_t == d keeps the documented orientation of each layout', () => {
    // circuit-tracer: [d_t, d] as stored
    const dir = sub('square-plt');
    const params = writePltFolder(dir, { d: 4, dT: 4, nLayers: 1 });
    const set = loadTranscoderSet(dir);
    expect(set.encoderInfo(0).encoderTransposed).toBe(false);
    expect(set.encoderFloat32(0)).toEqual(params[0].W_enc);
    expect(set.decoderRowsFloat32(0, [1])).toEqual(params[0].W_dec.slice(4, 8));
    set.close();

    // GemmaScope: W_enc stored [d, d_sae]
    const g = sub('square-gs');
    const p = pltParams(0, 4, 4, { threshold: true });
    writeNpz(path.join(g, 'layer_0/width_16k/average_l0_5/params.npz'), {
      W_enc: { data: transposed(p.W_enc, 4, 4), shape: [4, 4] },
      W_dec: { data: p.W_dec, shape: [4, 4] },
      b_enc: { data: p.b_enc, shape: [4] },
      b_dec: { data: p.b_dec, shape: [4] },
      threshold: { data: p.threshold!, shape: [4] },
    });
    const gs = loadTranscoderSet(g);
    expect(gs.encoderInfo(0).encoderTransposed).toBe(true);
    expect(gs.encoderFloat32(0)).toEqual(p.W_enc);
    expect(gs.decoderRowsFloat32(0, [2])).toEqual(p.W_dec.slice(8, 12));
    gs.close();
  });

  it('transpose / gatherColumns', () => {
    const m = Float32Array.from({ length: 12 }, (_, i) => i); // [3, 4]
    expect(Array.from(transpose(m, 3, 4))).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    const file = path.join(sub('gather'), 'm.safetensors');
    writeSafetensors(file, [{ name: 'm', dtype: 'F32', shape: [3, 4], data: m }]);
    const store = openSafetensors(file);
    expect(Array.from(gatherColumns(store, 'm', 3, 4, [3, 0]))).toEqual([3, 7, 11, 0, 4, 8]);
    store.close();
  });

  it('config.yaml-less circuit-tracer folder needs the hooks from config.yaml', () => {
    const dir = sub('no-config');
    writePltFolder(dir, { config: null });
    expect(() => loadTranscoderSet(dir)).toThrow(/feature_input_hook/);
    writeConfig(dir, { feature_input_hook: 'mlp.hook_in', feature_output_hook: 'mlp.hook_out' });
    const set = loadTranscoderSet(dir);
    expect(set.kind).toBe('plt');
    expect(set.modelName).toBeUndefined();
    set.close();
  });
});
