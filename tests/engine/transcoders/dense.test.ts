import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { encodeDense, reconstructDense } from '../../../electron/engine/transcoders/dense.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { tempDir, writeConfig } from './helpers.ts';

const f32 = (a: number[]) => Float32Array.from(a);
let root: string;
beforeAll(() => {
  root = tempDir('tc-dense-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** d = 2, d_t = 3, one layer. */
function tinyPlt(
  name: string,
  extra: { threshold?: number[]; skip?: boolean; config?: Record<string, unknown> },
) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  const t = [
    { name: 'W_enc', dtype: 'F32' as const, shape: [3, 2], data: f32([1, 0, 0, 1, 1, 1]) },
    { name: 'b_enc', dtype: 'F32' as const, shape: [3], data: f32([0, -1, 0.5]) },
    { name: 'W_dec', dtype: 'F32' as const, shape: [3, 2], data: f32([1, 0, 0, 2, 1, -1]) },
    { name: 'b_dec', dtype: 'F32' as const, shape: [2], data: f32([0.5, -0.5]) },
  ];
  if (extra.threshold) {
    t.push({ name: 'activation_function.threshold', dtype: 'F32', shape: [3], data: f32(extra.threshold) });
  }
  if (extra.skip) t.push({ name: 'W_skip', dtype: 'F32', shape: [2, 2], data: f32([0, 1, 2, 0]) });
  writeSafetensors(path.join(dir, 'layer_0.safetensors'), t);
  writeConfig(dir, {
    feature_input_hook: 'mlp.hook_in',
    feature_output_hook: 'mlp.hook_out',
    ...extra.config,
  });
  return loadTranscoderSet(dir);
}

// T = 3; position 0 holds junk that must not produce activations
const x = f32([9, 9, 1, 2, -1, 3]);

describe('encodeDense / reconstructDense, PLT', () => {
  it('ReLU, position 0 zeroed, reconstruction with W_skip (x·W_skipᵀ, live at position 0)', () => {
    const set = tinyPlt('relu-skip', { skip: true });
    // pre t1 = [1, 2−1, 1+2+0.5] = [1, 1, 3.5]; t2 = [−1, 3−1, 2+0.5] = [−1, 2, 2.5]
    const a = encodeDense(set, 0, x, 3);
    expect(Array.from(a)).toEqual([0, 0, 0, 1, 1, 3.5, 0, 2, 2.5]);
    // a·W_dec + b_dec: t0 [0.5, −0.5]; t1 [1+3.5, 2−3.5] + b = [5, −2]; t2 [2.5, 4−2.5] + b = [3, 1]
    // skip(x) = [x1, 2·x0]: t0 [9, 18]; t1 [2, 2]; t2 [3, −2]
    expect(Array.from(reconstructDense(set, 0, a, 3, x))).toEqual([9.5, 17.5, 7, 0, 6, -1]);
    expect(() => reconstructDense(set, 0, a, 3)).toThrow(/W_skip/);
    set.close();
  });

  it('JumpReLU', () => {
    const set = tinyPlt('jump', { threshold: [1, 0, 3] });
    const a = encodeDense(set, 0, x, 3);
    expect(Array.from(a)).toEqual([0, 0, 0, 0, 1, 3.5, 0, 2, 0]);
    // t1: [0, 2] + [3.5, −3.5] + b = [4, −2]; t2: [0, 4] + b = [0.5, 3.5]
    expect(Array.from(reconstructDense(set, 0, [a], 3))).toEqual([0.5, -0.5, 4, -2, 0.5, 3.5]);
    set.close();
  });

  it('TopK from config.yaml', () => {
    const set = tinyPlt('topk', { config: { activation: 'topk', k: 1 } });
    expect(set.activation).toEqual({ kind: 'topk', k: 1 });
    expect(Array.from(encodeDense(set, 0, x, 3))).toEqual([0, 0, 0, 0, 0, 3.5, 0, 0, 2.5]);
    set.close();
  });

  it('checks argument sizes', () => {
    const set = tinyPlt('sizes', {});
    expect(() => encodeDense(set, 0, f32([1, 2, 3]), 2)).toThrow(/x has 3 values, expected 4/);
    set.close();
  });
});

describe('encodeDense / reconstructDense, CLT', () => {
  it('recon[m] = b_dec[m] + Σ_{s≤m} a_s·W_dec_s[:, m−s, :]', () => {
    const dir = path.join(root, 'clt');
    fs.mkdirSync(dir);
    const st = (file: string, t: { name: string; shape: number[]; data: number[] }[]) =>
      writeSafetensors(
        path.join(dir, file),
        t.map((e) => ({ name: e.name, dtype: 'F32' as const, shape: e.shape, data: f32(e.data) })),
      );
    st('W_enc_0.safetensors', [
      { name: 'W_enc_0', shape: [2, 2], data: [1, 0, 0, 1] },
      { name: 'b_enc_0', shape: [2], data: [0, 0] },
      { name: 'b_dec_0', shape: [2], data: [1, 1] },
    ]);
    // feature 0: slot 0 [1, 0], slot 1 [0, 1]; feature 1: slot 0 [2, 0], slot 1 [0, 2]
    st('W_dec_0.safetensors', [{ name: 'W_dec_0', shape: [2, 2, 2], data: [1, 0, 0, 1, 2, 0, 0, 2] }]);
    st('W_enc_1.safetensors', [
      { name: 'W_enc_1', shape: [2, 2], data: [1, 1, 1, -1] },
      { name: 'b_enc_1', shape: [2], data: [0, 0] },
      { name: 'b_dec_1', shape: [2], data: [-1, 0] },
    ]);
    st('W_dec_1.safetensors', [{ name: 'W_dec_1', shape: [2, 1, 2], data: [1, 1, -1, 1] }]);
    writeConfig(dir, { model_kind: 'cross_layer_transcoder' });
    const set = loadTranscoderSet(dir);
    expect(set.activation).toEqual({ kind: 'relu' });

    const T = 2;
    expect(Array.from(encodeDense(set, 1, f32([5, 5, 3, 1]), T))).toEqual([0, 0, 4, 2]);
    const a0 = f32([0, 0, 2, 0.5]);
    const a1 = f32([0, 0, 1, 3]);
    // m = 0, t1: [1, 1] + 2·[1, 0] + 0.5·[2, 0] = [4, 1]
    expect(Array.from(reconstructDense(set, 0, [a0, a1], T))).toEqual([1, 1, 4, 1]);
    // m = 1, t1: [−1, 0] + 2·[0, 1] + 0.5·[0, 2] + 1·[1, 1] + 3·[−1, 1] = [−3, 7]
    expect(Array.from(reconstructDense(set, 1, [a0, a1], T))).toEqual([-1, 0, -3, 7]);
    expect(() => reconstructDense(set, 1, a1, T)).toThrow(/every layer/);
    set.close();
  });
});
