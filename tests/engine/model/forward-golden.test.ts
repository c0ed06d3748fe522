/**
 * The engine's forward pass against the independent PyTorch reference (native/reference):
 * logits, every hook and transcoder activations / reconstruction errors, ≤ 1e-4 max abs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import {
  activeFeatures,
  reconstruct,
  reconstructionErrors,
} from '../../../electron/engine/model/replacement.ts';
import { transcoderHookNames } from '../../../electron/engine/model/transcoder-encoder.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { FIXTURE_NAMES, fixturePath, TRANSCODER_FIXTURES } from '../../fixtures/tiny-checkpoints.ts';
import { loadGolden, maxAbsDiff } from './golden.ts';

const TOL = 1e-4;
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-golden-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

describe.each(FIXTURE_NAMES)('%s forward pass matches PyTorch', (name) => {
  const golden = loadGolden(name);

  it('logits and every hook', async () => {
    const model = openModel(fixturePath(name));
    const fp = await ForwardPass.create(model);
    try {
      for (const c of golden.cases) {
        const hookNames = Object.keys(c.hooks);
        expect(hookNames.length).toBeGreaterThan(10);
        const out = await fp.run(c.token_ids, ['logits', 'logits_pre_softcap', ...hookNames]);
        expect(maxAbsDiff(out.get('logits')!.data, c.logits.flat())).toBeLessThanOrEqual(TOL);
        expect(
          maxAbsDiff(out.get('logits_pre_softcap')!.data, c.logits_pre_softcap.flat()),
        ).toBeLessThanOrEqual(TOL);
        for (const h of hookNames) {
          const v = out.get(h)!;
          expect({ hook: h, dims: v.dims }).toEqual({ hook: h, dims: c.hooks[h].shape });
          expect({ hook: h, diff: maxAbsDiff(v.data, c.hooks[h].data) }).toEqual({
            hook: h,
            diff: expect.toSatisfy((d: number) => d <= TOL),
          });
        }
      }
    } finally {
      await fp.close();
      model.close();
    }
  });

  it.each(TRANSCODER_FIXTURES[name])('transcoders %s: activations and reconstruction errors', async (tc) => {
    const model = openModel(fixturePath(name));
    const set = loadTranscoderSet(path.join(fixturePath(name), 'transcoders', tc));
    const fp = await ForwardPass.create(model, { transcoders: set });
    try {
      for (const c of golden.cases) {
        const g = c.transcoders?.[tc];
        expect(g, `golden has transcoder set ${tc}`).toBeDefined();
        const T = c.token_ids.length;
        const L = set.nLayers;
        const hooks: string[] = [];
        for (let l = 0; l < L; l++) {
          hooks.push(
            transcoderHookNames(l).acts,
            `blocks.${l}.${set.readHook}`,
            `blocks.${l}.${set.writeHook}`,
          );
        }
        const out = await fp.run(c.token_ids, hooks);
        const active = [];
        for (let l = 0; l < L; l++) {
          const acts = out.get(transcoderHookNames(l).acts)!;
          expect(
            maxAbsDiff(acts.data, g!.activations[String(l)].data),
            `layer ${l} activations`,
          ).toBeLessThanOrEqual(TOL);
          active.push(activeFeatures(acts.data, T, set.dTranscoderPerLayer[l], l));
        }
        const reads = Array.from({ length: L }, (_, l) => out.get(`blocks.${l}.${set.readHook}`)!.data);
        const mlpOut = Array.from({ length: L }, (_, l) => out.get(`blocks.${l}.${set.writeHook}`)!.data);
        const errors = reconstructionErrors(mlpOut, reconstruct(set, active, T, reads), set.dModel);
        for (let l = 0; l < L; l++) {
          const diff = maxAbsDiff(errors[l], g!.reconstruction_error[String(l)].data);
          expect(diff, `layer ${l} reconstruction error`).toBeLessThanOrEqual(TOL);
        }
      }
    } finally {
      await fp.close();
      set.close();
      model.close();
    }
  });
});
