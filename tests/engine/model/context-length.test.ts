/**
 * Issue 14 item 8: more token ids than the context length are refused before any work, with a
 * typed error naming the context length and its config field (it used to grow past 4 GB).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { isEngineError } from '../../../electron/engine/errors.ts';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-ctx-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('token ids past max_position_embeddings are refused with a typed error, quickly', async () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(DEMO_DIR, 'config.json'), 'utf8'));
  cfg.max_position_embeddings = 16;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  fs.symlinkSync(path.join(DEMO_DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  const model = openModel(dir);
  const fp = await ForwardPass.create(model);
  try {
    expect((await fp.run(new Array(16).fill(5))).get('logits')).toBeDefined();
    const t0 = performance.now();
    let caught: unknown;
    try {
      await fp.run(new Array(17).fill(5));
    } catch (e) {
      caught = e;
    }
    const ms = performance.now() - t0;
    expect(isEngineError(caught), String(caught)).toBe(true);
    if (!isEngineError(caught)) return;
    expect(caught.code).toBe('argument');
    expect(caught.field).toBe('token_ids');
    expect(caught.message).toContain('17 tokens');
    expect(caught.message).toContain('context length of 16');
    expect(caught.message).toContain('max_position_embeddings');
    expect(ms).toBeLessThan(100);
  } finally {
    await fp.close();
    model.close();
  }
});
