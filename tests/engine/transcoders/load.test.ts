import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import {
  pltParams,
  tempDir,
  transposed,
  writeCltFolder,
  writeConfig,
  writeGemmaScopeFolder,
  writeNpz,
  writePltFolder,
} from './helpers.ts';

/** Rows `idx` of a row-major [*, width] matrix. */
function rows(m: Float32Array, idx: number[], width: number): Float32Array {
  const out = new Float32Array(idx.length * width);
  for (const [i, r] of idx.entries()) out.set(m.subarray(r * width, (r + 1) * width), i * width);
  return out;
}

let root: string;
beforeAll(() => {
  root = tempDir('tc-load-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const sub = (name: string) => {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

describe('circuit-tracer PLT folder', () => {
  it('loads shapes, hooks, activation and every accessor', () => {
    const dir = sub('plt');
    const params = writePltFolder(dir, { nLayers: 2, threshold: true, skip: true });
    const set = loadTranscoderSet(dir);
    try {
      expect(set.kind).toBe('plt');
      expect(set.layout).toBe('circuit-tracer');
      expect(set.modelName).toBe('test/tiny');
      expect(set.configFile).toBe(path.join(dir, 'config.yaml'));
      expect(set.nLayers).toBe(2);
      expect(set.dModel).toBe(4);
      expect(set.dTranscoder).toBe(6);
      expect(set.dTranscoderPerLayer).toEqual([6, 6]);
      expect(set.readHook).toBe('mlp.hook_in');
      expect(set.writeHook).toBe('mlp.hook_out');
      expect(set.activation).toEqual({ kind: 'jumprelu' });
      expect(set.hasSkip).toBe(true);
      expect(set.layerFiles(1)).toEqual([path.join(dir, 'layer_1.safetensors')]);
      for (const l of [0, 1]) {
        const p = params[l];
        expect(set.encoderFloat32(l)).toEqual(p.W_enc);
        expect(set.encoderBiasFloat32(l)).toEqual(p.b_enc);
        expect(set.thresholdFloat32(l)).toEqual(p.threshold);
        expect(set.decoderBiasFloat32(l)).toEqual(p.b_dec);
        expect(set.skipFloat32(l)).toEqual(p.W_skip);
        expect(set.decoderRowsFloat32(l, [5, 0, 2])).toEqual(rows(p.W_dec, [5, 0, 2], 4));
      }
      const info = set.encoderInfo(1);
      expect(info.encoderTransposed).toBe(false);
      expect(info.name).toBe('W_enc');
      expect(info.shape).toEqual([6, 4]);
      expect(info.location.kind).toBe('file');
      if (info.location.kind === 'file') {
        expect(info.location.file).toBe(path.join(dir, 'layer_1.safetensors'));
        const buf = fs.readFileSync(info.location.file);
        const bytes = buf.subarray(info.location.byteOffset, info.location.byteOffset + info.byteLength);
        expect(new Float32Array(Uint8Array.from(bytes).buffer)).toEqual(params[1].W_enc);
      }
      expect(set.layerTensors(0).threshold?.name).toBe('activation_function.threshold');
    } finally {
      set.close();
    }
  });

  it('ReLU without thresholds; blocks.{l}. prefixes stripped; TopK from config', () => {
    const dir = sub('plt-relu');
    writePltFolder(dir, {
      config: {
        feature_input_hook: 'blocks.{l}.ln2.hook_normalized',
        feature_output_hook: 'blocks.3.hook_mlp_out',
      },
    });
    const set = loadTranscoderSet(dir);
    expect(set.activation).toEqual({ kind: 'relu' });
    expect(set.hasSkip).toBe(false);
    expect(set.skipFloat32(0)).toBeNull();
    expect(set.thresholdFloat32(0)).toBeNull();
    expect(set.readHook).toBe('ln2.hook_normalized');
    expect(set.writeHook).toBe('hook_mlp_out');
    set.close();

    const dir2 = sub('plt-topk');
    writePltFolder(dir2, { config: { activation: 'topk', k: 3 } });
    const set2 = loadTranscoderSet(dir2);
    expect(set2.activation).toEqual({ kind: 'topk', k: 3 });
    set2.close();
  });

  it('follows a transcoders: list of hf:// URIs and {layer, filepath} objects', () => {
    const dir = sub('plt-list');
    const files = sub('plt-list/weights');
    const params = writePltFolder(files, { nLayers: 2, config: null });
    writeConfig(dir, {
      model_name: 'meta-llama/Llama-3.2-1B',
      model_kind: 'transcoder_set',
      feature_input_hook: 'mlp.hook_in',
      feature_output_hook: 'mlp.hook_out',
      transcoders: [
        { id: 'one', layer: 1, filepath: 'weights/layer_1.safetensors' },
        'hf://someone/some-repo/weights/layer_0.safetensors',
      ],
    });
    const set = loadTranscoderSet(dir);
    expect(set.nLayers).toBe(2);
    expect(set.layerFiles(0)).toEqual([path.join(files, 'layer_0.safetensors')]);
    expect(set.encoderFloat32(1)).toEqual(params[1].W_enc);
    set.close();
  });
});

describe('GemmaScope npz', () => {
  it('walks a layer_{L}/width_16k/average_l0_{N}/params.npz tree without config.yaml', () => {
    const dir = sub('gemmascope');
    const { params } = writeGemmaScopeFolder(dir, { nLayers: 2 });
    const set = loadTranscoderSet(dir);
    try {
      expect(set.kind).toBe('plt');
      expect(set.layout).toBe('gemmascope');
      expect(set.configFile).toBeNull();
      expect(set.nLayers).toBe(2);
      expect(set.dModel).toBe(4);
      expect(set.dTranscoder).toBe(6);
      expect(set.readHook).toBe('ln2.hook_normalized');
      expect(set.writeHook).toBe('hook_mlp_out');
      expect(set.activation).toEqual({ kind: 'jumprelu' });
      expect(set.encoderInfo(0).encoderTransposed).toBe(true);
      expect(set.encoderInfo(0).shape).toEqual([4, 6]);
      expect(set.encoderInfo(0).location.kind).toBe('file');
      for (const l of [0, 1]) {
        expect(set.encoderFloat32(l)).toEqual(params[l].W_enc);
        expect(set.thresholdFloat32(l)).toEqual(params[l].threshold);
        expect(set.decoderRowsFloat32(l, [3, 1])).toEqual(rows(params[l].W_dec, [3, 1], 4));
        expect(set.decoderBiasFloat32(l)).toEqual(params[l].b_dec);
      }
    } finally {
      set.close();
    }
  });

  it('follows hf:// URIs of a config.yaml list (mntss style), deflated members too', () => {
    const dir = sub('gemmascope-list');
    const { params, rel } = writeGemmaScopeFolder(dir, { nLayers: 2, deflate: true });
    // a second width for layer 0 that the list does not pick
    const p = pltParams(0, 4, 8, { threshold: true });
    writeNpz(path.join(dir, 'layer_0/width_65k/average_l0_9/params.npz'), {
      W_enc: { data: transposed(p.W_enc, 8, 4), shape: [4, 8] },
      W_dec: { data: p.W_dec, shape: [8, 4] },
      b_enc: { data: p.b_enc, shape: [8] },
      b_dec: { data: p.b_dec, shape: [4] },
      threshold: { data: p.threshold!, shape: [8] },
    });
    writeConfig(dir, {
      model_name: 'google/gemma-2-2b',
      model_kind: 'transcoder_set',
      feature_input_hook: 'ln2.hook_normalized',
      feature_output_hook: 'hook_mlp_out',
      transcoders: rel.map((r) => `hf://google/gemma-scope-2b-pt-transcoders/${r}`),
    });
    const set = loadTranscoderSet(dir);
    expect(set.layout).toBe('gemmascope');
    expect(set.modelName).toBe('google/gemma-2-2b');
    expect(set.dTranscoderPerLayer).toEqual([6, 6]);
    expect(set.encoderFloat32(1)).toEqual(params[1].W_enc);
    expect(set.encoderInfo(1).location.kind).toBe('memory');
    expect(set.decoderRowsFloat32(0, [5])).toEqual(rows(params[0].W_dec, [5], 4));
    set.close();
  });
});

describe('cross-layer transcoder folder', () => {
  it('loads a bf16 CLT', () => {
    const dir = sub('clt');
    const params = writeCltFolder(dir, { nLayers: 3, d: 4, dT: 5, dtype: 'BF16' });
    const set = loadTranscoderSet(dir);
    try {
      expect(set.kind).toBe('clt');
      expect(set.layout).toBe('clt');
      expect(set.nLayers).toBe(3);
      expect(set.dModel).toBe(4);
      expect(set.dTranscoder).toBe(5);
      expect(set.readHook).toBe('hook_resid_mid');
      expect(set.writeHook).toBe('hook_mlp_out');
      expect(set.activation).toEqual({ kind: 'jumprelu' });
      expect(set.hasSkip).toBe(false);
      expect(set.encoderInfo(2).dtype).toBe('BF16');
      expect(set.encoderInfo(2).name).toBe('W_enc_2');
      expect(set.layerFiles(1)).toEqual([
        path.join(dir, 'W_enc_1.safetensors'),
        path.join(dir, 'W_dec_1.safetensors'),
      ]);
      for (let l = 0; l < 3; l++) {
        expect(set.encoderFloat32(l)).toEqual(params[l].W_enc);
        expect(set.encoderBiasFloat32(l)).toEqual(params[l].b_enc);
        expect(set.decoderBiasFloat32(l)).toEqual(params[l].b_dec);
        expect(set.thresholdFloat32(l)).toEqual(params[l].threshold);
      }
    } finally {
      set.close();
    }
  });

  it('is recognised without model_kind and defaults the hooks', () => {
    const dir = sub('clt-bare');
    writeCltFolder(dir, { nLayers: 2, dtype: 'F32', threshold: false, config: null });
    const set = loadTranscoderSet(dir);
    expect(set.kind).toBe('clt');
    expect(set.configFile).toBeNull();
    expect(set.readHook).toBe('hook_resid_mid');
    expect(set.activation).toEqual({ kind: 'relu' });
    set.close();
  });
});

describe('contentKey', () => {
  it('is stable and changes when a file changes', () => {
    const dir = sub('key');
    writePltFolder(dir);
    const a = loadTranscoderSet(dir);
    const b = loadTranscoderSet(dir);
    const before = a.contentKey();
    expect(before).toMatch(/^[0-9a-f]{32}$/);
    expect(b.contentKey()).toBe(before);
    const f = path.join(dir, 'layer_1.safetensors');
    const t = fs.statSync(f).mtime;
    fs.utimesSync(f, t, new Date(t.getTime() + 5000));
    expect(a.contentKey()).not.toBe(before);
    const c = loadTranscoderSet(dir);
    expect(c.contentKey()).toBe(a.contentKey());
    a.close();
    b.close();
    c.close();
  });
});
