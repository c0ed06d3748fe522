import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import {
  type ModelForTranscoders,
  transcoderModelProblems,
  validateTranscodersForModel,
} from '../../../electron/engine/transcoders/validate.ts';
import {
  engineErrorOf,
  tempDir,
  values,
  writeCltFolder,
  writeConfig,
  writeGemmaScopeFolder,
  writeNpz,
  writePltFolder,
} from './helpers.ts';

let root: string;
let n = 0;
beforeAll(() => {
  root = tempDir('tc-err-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const fresh = () => {
  const d = path.join(root, `case-${n++}`);
  fs.mkdirSync(d);
  return d;
};

const CONFIG = {
  model_name: 'test/tiny',
  model_kind: 'transcoder_set',
  feature_input_hook: 'mlp.hook_in',
  feature_output_hook: 'mlp.hook_out',
};

/** A PLT layer file with the given tensor shapes (null drops a tensor). */
function layerFile(dir: string, l: number, shapes: Record<string, number[] | null>) {
  const base: Record<string, number[] | null> = {
    W_enc: [6, 4],
    W_dec: [6, 4],
    b_enc: [6],
    b_dec: [4],
    ...shapes,
  };
  const t = Object.entries(base)
    .filter((e): e is [string, number[]] => e[1] !== null)
    .map(([name, shape], i) => ({
      name,
      dtype: 'F32' as const,
      shape,
      data: values(
        shape.reduce((a, b) => a * b, 1),
        i + 1,
      ),
    }));
  writeSafetensors(path.join(dir, `layer_${l}.safetensors`), t);
}

const MODEL: ModelForTranscoders = {
  nLayers: 2,
  hiddenSize: 4,
  family: 'llama',
  supportedHooks: ['mlp.hook_in', 'mlp.hook_out', 'hook_resid_mid', 'hook_mlp_out', 'ln2.hook_normalized'],
};

describe('config.yaml errors', () => {
  it('missing field', () => {
    const dir = fresh();
    writePltFolder(dir);
    writeConfig(dir, { model_name: 'x', model_kind: 'transcoder_set', feature_output_hook: 'mlp.hook_out' });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'config.yaml'));
    expect(e.field).toBe('feature_input_hook');
  });

  it('unknown model_kind', () => {
    const dir = fresh();
    writePltFolder(dir, { config: { model_kind: 'sparse_autoencoder' } });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('unsupported');
    expect(e.file).toBe(path.join(dir, 'config.yaml'));
    expect(e.field).toBe('model_kind');
    expect(e.message).toMatch(/sparse_autoencoder/);
  });

  it('unknown activation', () => {
    const dir = fresh();
    writePltFolder(dir, { config: { activation: 'gelu' } });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('unsupported');
    expect(e.field).toBe('activation');
    expect(e.file).toBe(path.join(dir, 'config.yaml'));
  });

  it('topk without k, bad k, invalid YAML, wrong field types', () => {
    let dir = fresh();
    writePltFolder(dir, { config: { activation: 'topk' } });
    let e = engineErrorOf(() => loadTranscoderSet(dir));
    expect([e.code, e.field]).toEqual(['missing', 'k']);

    dir = fresh();
    writePltFolder(dir, { config: { activation: 'topk', k: 1.5 } });
    e = engineErrorOf(() => loadTranscoderSet(dir));
    expect([e.code, e.field]).toEqual(['config', 'k']);

    dir = fresh();
    writePltFolder(dir);
    fs.writeFileSync(path.join(dir, 'config.yaml'), 'model_name: [unclosed\n');
    e = engineErrorOf(() => loadTranscoderSet(dir));
    expect([e.code, e.file]).toEqual(['config', path.join(dir, 'config.yaml')]);

    dir = fresh();
    writePltFolder(dir, { config: { feature_output_hook: 3 } });
    e = engineErrorOf(() => loadTranscoderSet(dir));
    expect([e.code, e.field]).toEqual(['config', 'feature_output_hook']);
  });

  it('jumprelu configured but a layer has no threshold', () => {
    const dir = fresh();
    writePltFolder(dir, { config: { activation: 'jumprelu' } });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'layer_0.safetensors'));
    expect(e.tensor).toBe('activation_function.threshold');
  });
});

describe('missing files and tensors', () => {
  it('missing layer file (a gap in layer_{i}.safetensors)', () => {
    const dir = fresh();
    writePltFolder(dir, { nLayers: 3 });
    fs.rmSync(path.join(dir, 'layer_1.safetensors'));
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'layer_1.safetensors'));
  });

  it('listed hf:// file not present locally says where it looked', () => {
    const dir = fresh();
    writePltFolder(dir, {
      config: {
        transcoders: ['hf://mntss/transcoder-Llama-3.2-1B/layer_0.safetensors', 'sub/layer_1.safetensors'],
      },
    });
    let e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'sub/layer_1.safetensors'));
    expect(e.field).toBe('transcoders[1]');

    writeConfig(dir, {
      ...CONFIG,
      transcoders: ['hf://mntss/transcoder-Llama-3.2-1B/x/layer_0.safetensors'],
    });
    e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.file).toBe(path.join(dir, 'x/layer_0.safetensors'));
    expect(e.message).toMatch(/hf:\/\/mntss\/transcoder-Llama-3.2-1B\/x\/layer_0.safetensors/);
    expect(e.message).toMatch(/download/);
  });

  it('missing CLT decoder file', () => {
    const dir = fresh();
    writeCltFolder(dir, { nLayers: 3, dtype: 'F32' });
    fs.rmSync(path.join(dir, 'W_dec_2.safetensors'));
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'W_dec_2.safetensors'));
  });

  it('missing tensor in a layer file', () => {
    const dir = fresh();
    writeConfig(dir, CONFIG);
    layerFile(dir, 0, { W_dec: null });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'layer_0.safetensors'));
    expect(e.tensor).toBe('W_dec');
  });

  it('no config.yaml and no transcoder files', () => {
    const dir = fresh();
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('missing');
    expect(e.file).toBe(path.join(dir, 'config.yaml'));
    expect(engineErrorOf(() => loadTranscoderSet(path.join(dir, 'nope'))).code).toBe('missing');
  });

  it('several GemmaScope candidates for one layer', () => {
    const dir = fresh();
    writeGemmaScopeFolder(dir, { nLayers: 1 });
    const d = new Float32Array(24);
    writeNpz(path.join(dir, 'layer_0/width_16k/average_l0_99/params.npz'), {
      W_enc: { data: d, shape: [4, 6] },
      W_dec: { data: d, shape: [6, 4] },
      b_enc: { data: d.subarray(0, 6), shape: [6] },
      b_dec: { data: d.subarray(0, 4), shape: [4] },
      threshold: { data: d.subarray(0, 6), shape: [6] },
    });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('config');
    expect(e.field).toBe('transcoders');
    expect(e.file).toMatch(/layer_0\/width_16k\/average_l0_\d+\/params\.npz$/);
    expect(e.message).toMatch(/average_l0_50/);
    expect(e.message).toMatch(/average_l0_99/);
  });
});

describe('inconsistent tensors', () => {
  it('b_enc length inconsistent with W_enc', () => {
    const dir = fresh();
    writeConfig(dir, CONFIG);
    layerFile(dir, 0, { b_enc: [5] });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('shape');
    expect(e.file).toBe(path.join(dir, 'layer_0.safetensors'));
    expect(e.tensor).toBe('b_enc');
  });

  it('W_dec, threshold, W_skip of the wrong shape', () => {
    const cases: [Record<string, number[]>, string][] = [
      [{ W_dec: [6, 3] }, 'W_dec'],
      [{ 'activation_function.threshold': [5] }, 'activation_function.threshold'],
      [{ W_skip: [4, 6] }, 'W_skip'],
      [{ W_enc: [6, 4, 1] }, 'W_enc'],
    ];
    for (const [shapes, tensor] of cases) {
      const dir = fresh();
      writeConfig(dir, CONFIG);
      layerFile(dir, 0, shapes);
      const e = engineErrorOf(() => loadTranscoderSet(dir));
      expect([e.code, e.tensor, e.file]).toEqual(['shape', tensor, path.join(dir, 'layer_0.safetensors')]);
    }
  });

  it('layers of different widths', () => {
    const dir = fresh();
    writeConfig(dir, CONFIG);
    layerFile(dir, 0, {});
    layerFile(dir, 1, { W_enc: [6, 3], W_dec: [6, 3], b_dec: [3] });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect([e.code, e.tensor, e.file]).toEqual(['shape', 'b_dec', path.join(dir, 'layer_1.safetensors')]);
  });

  it('CLT W_dec slot count wrong', () => {
    const dir = fresh();
    writeCltFolder(dir, { nLayers: 3, dtype: 'BF16', slots: (l, L) => (l === 1 ? L - l + 1 : L - l) });
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect(e.code).toBe('shape');
    expect(e.file).toBe(path.join(dir, 'W_dec_1.safetensors'));
    expect(e.tensor).toBe('W_dec_1');
    expect(e.message).toMatch(/3 output slots, expected L−l = 3−1 = 2/);
  });

  it('mixed thresholds', () => {
    const dir = fresh();
    writeConfig(dir, CONFIG);
    layerFile(dir, 0, { 'activation_function.threshold': [6] });
    layerFile(dir, 1, {});
    const e = engineErrorOf(() => loadTranscoderSet(dir));
    expect([e.code, e.file, e.tensor]).toEqual([
      'missing',
      path.join(dir, 'layer_1.safetensors'),
      'activation_function.threshold',
    ]);
  });
});

describe('validateTranscodersForModel', () => {
  it('accepts a set that fits', () => {
    const dir = fresh();
    writePltFolder(dir, { nLayers: 2, d: 4 });
    const set = loadTranscoderSet(dir);
    expect(transcoderModelProblems(set, MODEL)).toEqual([]);
    expect(() => validateTranscodersForModel(set, MODEL)).not.toThrow();
    set.close();
  });

  it('width mismatch names the file and tensor', () => {
    const dir = fresh();
    writePltFolder(dir, { nLayers: 2, d: 4 });
    const set = loadTranscoderSet(dir);
    const e = engineErrorOf(() => validateTranscodersForModel(set, { ...MODEL, hiddenSize: 8 }));
    expect(e.code).toBe('mismatch');
    expect(e.file).toBe(path.join(dir, 'layer_0.safetensors'));
    expect(e.tensor).toBe('W_enc');
    expect(e.message).toMatch(/hidden size 8/);
    set.close();
  });

  it('layer count mismatch: missing layer files / too many layers', () => {
    const dir = fresh();
    writePltFolder(dir, { nLayers: 2 });
    const set = loadTranscoderSet(dir);
    let e = engineErrorOf(() => validateTranscodersForModel(set, { ...MODEL, nLayers: 4 }));
    expect(e.code).toBe('mismatch');
    expect(e.file).toBe(path.join(dir, 'layer_2.safetensors'));
    expect(e.field).toBe('transcoders');
    expect(e.message).toMatch(/missing layers 2\.\.3/);
    e = engineErrorOf(() => validateTranscodersForModel(set, { ...MODEL, nLayers: 1 }));
    expect(e.code).toBe('mismatch');
    expect(e.file).toBe(path.join(dir, 'config.yaml'));
    set.close();

    const clt = fresh();
    writeCltFolder(clt, { nLayers: 2, dtype: 'F32' });
    const cset = loadTranscoderSet(clt);
    e = engineErrorOf(() => validateTranscodersForModel(cset, { ...MODEL, nLayers: 3 }));
    expect(e.file).toBe(path.join(clt, 'W_enc_2.safetensors'));
    cset.close();
  });

  it('unsupported hooks name the config field', () => {
    const dir = fresh();
    writePltFolder(dir, { config: { feature_output_hook: 'hook_attn_out' } });
    const set = loadTranscoderSet(dir);
    const e = engineErrorOf(() => validateTranscodersForModel(set, MODEL));
    expect(e.code).toBe('mismatch');
    expect(e.file).toBe(path.join(dir, 'config.yaml'));
    expect(e.field).toBe('feature_output_hook');
    expect(e.message).toMatch(/hook_attn_out/);
    set.close();
  });

  it('several problems: the first is thrown, the rest are mentioned', () => {
    const dir = fresh();
    writePltFolder(dir, { nLayers: 2, d: 4, config: { feature_input_hook: 'nope' } });
    const set = loadTranscoderSet(dir);
    const model = { ...MODEL, hiddenSize: 8, nLayers: 3 };
    expect(transcoderModelProblems(set, model).length).toBe(3);
    const e = engineErrorOf(() => validateTranscodersForModel(set, model));
    expect(e.tensor).toBe('W_enc');
    expect(e.message).toMatch(/and 2 more/);
    expect(e.message.match(/file /g)?.length).toBeGreaterThanOrEqual(1);
    set.close();
  });
});
