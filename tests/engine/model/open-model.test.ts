/** Opening checkpoints: every family loads; bad folders fail with typed errors naming file and field. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRANSCODER_HOOKS } from '../../../electron/engine/arch/hooks.ts';
import { openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { EngineError } from '../../../electron/engine/errors.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { transcoderModelProblems } from '../../../electron/engine/transcoders/validate.ts';
import { FIXTURE_NAMES, fixturePath } from '../../fixtures/tiny-checkpoints.ts';

function copyFixture(name: (typeof FIXTURE_NAMES)[number]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cw-bad-${name}-`));
  fs.cpSync(fixturePath(name), dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void) {
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

function expectEngineError(fn: () => unknown, code: string, ...mentions: string[]): EngineError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    const err = e as EngineError;
    expect(err.code).toBe(code);
    for (const m of mentions) expect(err.message).toContain(m);
    return err;
  }
  throw new Error('expected an EngineError');
}

describe('openModel', () => {
  it.each(FIXTURE_NAMES)('opens %s and validates every tensor it uses', (name) => {
    const m = openModel(fixturePath(name));
    expect(m.config.family).toBe(name.replace('tiny-', ''));
    expect(m.expectedShapes.size).toBeGreaterThan(10);
    expect(m.unusedTensors).toEqual([]);
    m.close();
  });

  it('rejects an unsupported model_type naming config.json and the field', () => {
    const dir = copyFixture('tiny-llama');
    editConfig(dir, (c) => {
      c.model_type = 'mamba';
    });
    const e = expectEngineError(() => openModel(dir), 'unsupported', 'mamba', 'config.json');
    expect(e.field).toBe('model_type');
  });

  it('rejects a tensor whose shape disagrees with config.json', () => {
    const dir = copyFixture('tiny-qwen3');
    editConfig(dir, (c) => {
      c.intermediate_size = 96;
    });
    const e = expectEngineError(() => openModel(dir), 'shape', 'model.safetensors', 'mlp');
    expect(e.tensor).toMatch(/mlp\.(gate|up|down)_proj\.weight/);
  });

  it('rejects a checkpoint that lacks a tensor, naming it', () => {
    const dir = copyFixture('tiny-gemma2');
    const file = path.join(dir, 'model.safetensors');
    const store = openSafetensors(file);
    const drop = 'model.layers.1.post_feedforward_layernorm.weight';
    const kept = store
      .names()
      .filter((n) => n !== drop)
      .map((n) => {
        const info = store.info(n);
        return { name: n, dtype: info.dtype, shape: info.shape, data: store.readRaw(n) };
      });
    store.close();
    writeSafetensors(file, kept);
    const e = expectEngineError(() => openModel(dir), 'missing', drop);
    expect(e.tensor).toBe(drop);
  });

  it('rejects a missing or malformed config.json', () => {
    const dir = copyFixture('tiny-gpt2');
    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": "gpt2", ');
    expectEngineError(() => openModel(dir), 'header', 'config.json');
    fs.rmSync(path.join(dir, 'config.json'));
    expectEngineError(() => openModel(dir), 'missing', 'config.json');
  });

  it('rejects a bad config value naming the field', () => {
    const dir = copyFixture('tiny-llama');
    editConfig(dir, (c) => {
      c.num_key_value_heads = 3;
    });
    const e = expectEngineError(() => openModel(dir), 'config', 'num_key_value_heads');
    expect(e.field).toBe('num_key_value_heads');
  });
});

describe('transcoders against the model', () => {
  const modelFacts = (dir: string) => {
    const m = openModel(dir);
    const c = m.config;
    m.close();
    return {
      nLayers: c.nLayers,
      hiddenSize: c.hiddenSize,
      family: c.family,
      supportedHooks: TRANSCODER_HOOKS,
    };
  };

  it('accepts the matching fixtures', () => {
    for (const tc of ['plt', 'clt', 'gemmascope']) {
      const set = loadTranscoderSet(path.join(fixturePath('tiny-gemma2'), 'transcoders', tc));
      expect(transcoderModelProblems(set, modelFacts(fixturePath('tiny-gemma2')))).toEqual([]);
      set.close();
    }
  });

  it('reports a width mismatch and a layer count mismatch', () => {
    // tiny-gemma2 has 3 layers and hidden 32; tiny-qwen3's transcoders are 2 layers of width 32,
    // tiny-gpt2's are width 32 too: check against a model with another width and layer count.
    const set = loadTranscoderSet(path.join(fixturePath('tiny-gemma2'), 'transcoders', 'plt'));
    const problems = transcoderModelProblems(set, {
      nLayers: 2,
      hiddenSize: 48,
      family: 'gemma2',
      supportedHooks: TRANSCODER_HOOKS,
    });
    set.close();
    const codes = problems.map((p) => p.code);
    expect(codes.every((c) => c === 'mismatch')).toBe(true);
    expect(problems.some((p) => /48/.test(p.message) && p.tensor !== undefined)).toBe(true);
    expect(problems.some((p) => /layer/.test(p.message) && /2/.test(p.message))).toBe(true);
  });
});
