/**
 * Issue 14 item 8: NaN/Inf weights and integer dtypes declared for float weights are refused
 * early with a typed error naming the file and the tensor (NaN used to surface only after a
 * full attribution as "adjacency entry [0,0] is not finite"; an I32 norm was accepted).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { expectEngineError, expectEngineErrorAsync } from '../checkpoint/helpers.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-badw-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A copy of the demo model whose safetensors bytes `edit` changes (header and data). */
function demoCopy(name: string, edit: (buf: Buffer, offsetOf: (tensor: string) => number) => void): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    fs.copyFileSync(path.join(DEMO_DIR, f), path.join(dir, f));
  const buf = fs.readFileSync(path.join(DEMO_DIR, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(buf, (t) => 8 + n + header[t].data_offsets[0]);
  fs.writeFileSync(path.join(dir, 'model.safetensors'), buf);
  return dir;
}

/** Replace the dtype of `tensor` in the header in place (same length, so offsets hold). */
function setDtype(buf: Buffer, tensor: string, from: string, to: string): void {
  const key = `"${tensor}":{"dtype":"${from}"`;
  const at = buf.indexOf(key);
  expect(at).toBeGreaterThan(0);
  buf.write(`"${tensor}":{"dtype":"${to}"`, at);
}

it('an integer dtype declared for a float weight is refused at open, naming tensor and dtype', () => {
  const dir = demoCopy('i32', (buf) => setDtype(buf, 'model.norm.weight', 'F32', 'I32'));
  const file = path.join(dir, 'model.safetensors');
  const t0 = performance.now();
  const err = expectEngineError(() => openModel(dir), 'dtype', file, 'model.norm.weight', 'I32');
  expect(err.tensor).toBe('model.norm.weight');
  expect(performance.now() - t0).toBeLessThan(1000);
});

it('a NaN in a norm weight is refused at open, naming file and tensor', () => {
  const t = 'model.layers.1.post_attention_layernorm.weight';
  const dir = demoCopy('nan-norm', (buf, at) => buf.writeFloatLE(Number.NaN, at(t) + 4 * 3));
  const file = path.join(dir, 'model.safetensors');
  const err = expectEngineError(() => openModel(dir), 'bounds', file, t, 'not finite', 'element 3');
  expect(err.file).toBe(file);
  expect(err.tensor).toBe(t);
});

it('an Inf in a matrix is found when its weights are decoded into reused arrays', async () => {
  const t = 'model.layers.2.mlp.down_proj.weight';
  const dir = demoCopy('inf-matrix', (buf, at) => buf.writeFloatLE(Number.POSITIVE_INFINITY, at(t) + 4 * 7));
  const file = path.join(dir, 'model.safetensors');
  const store = openSafetensors(file);
  try {
    const info = store.info(t);
    const out = new Float32Array(info.byteLength / 4);
    expectEngineError(() => store.readFloat32(t, out), 'bounds', file, t, 'element 7');
  } finally {
    store.close();
  }
  // the forward pass streams the model's matrices through readFloat32(name, out)
  const model = openModel(dir);
  try {
    await expectEngineErrorAsync(
      async () => {
        const fp = await ForwardPass.create(model);
        try {
          await fp.run([2, 5, 6]);
        } finally {
          await fp.close();
        }
      },
      'bounds',
      file,
      t,
    );
  } finally {
    model.close();
  }
});
