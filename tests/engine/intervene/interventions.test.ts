/**
 * Interventions: open loop agrees with the graph's edges (ablating a feature moves each logit
 * target by −edge); closed loop with no edit is the original model; edits propagate.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Intervener } from '../../../electron/engine/intervene/interventions.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { type FixtureName, fixturePath } from '../../fixtures/tiny-checkpoints.ts';
import { loadGolden } from '../model/golden.ts';

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-iv-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

async function open(fixture: FixtureName, tc: string) {
  const model = openModel(fixturePath(fixture));
  const set = loadTranscoderSet(path.join(fixturePath(fixture), 'transcoders', tc));
  const iv = await Intervener.create(model, set, { cacheRoot });
  return {
    iv,
    model,
    set,
    async close() {
      await iv.close();
      set.close();
      model.close();
    },
  };
}

/** Demeaned pre-softcap logits from final logits. */
function demeanedPreSoftcap(logits: number[], cap: number | undefined): number[] {
  const pre = logits.map((v) => (cap === undefined ? v : cap * Math.atanh(v / cap)));
  const mean = pre.reduce((a, b) => a + b, 0) / pre.length;
  return pre.map((v) => v - mean);
}

describe.each([
  ['tiny-gemma2', 'plt'],
  ['tiny-gemma2', 'clt'],
  ['tiny-llama', 'plt-skip'],
  ['tiny-gpt2', 'plt'],
] as [FixtureName, string][])('interventions on %s / %s', (fixture, tc) => {
  const tokenIds = loadGolden(fixture).cases[0].token_ids;

  it('open loop: ablating one feature moves each logit target by minus its edge', async () => {
    const s = await open(fixture, tc);
    try {
      const result = await s.iv.attributor.attribute(tokenIds, {
        maxNLogits: 5,
        desiredLogitProb: 0.99,
        batchSize: 64,
      });
      const { space } = result.prepared;
      const cap = s.model.config.finalSoftcap;
      // The three features with the largest direct edge into the top logit.
      const row = result.logitRows[0];
      const strongest = Array.from({ length: space.nActive }, (_, i) => i)
        .sort((a, b) => Math.abs(row[b]) - Math.abs(row[a]))
        .slice(0, 3);
      for (const a of strongest) {
        const r = await s.iv.openLoop(
          tokenIds,
          [
            {
              layer: space.featureLayer[a],
              feature: space.featureIndex[a],
              position: space.featurePosition[a],
              mode: 'ablate',
            },
          ],
          { top: s.model.config.vocabSize },
          result.prepared,
        );
        const before = new Array<number>(s.model.config.vocabSize);
        const after = new Array<number>(s.model.config.vocabSize);
        for (const c of r.changes) {
          before[c.tokenId] = c.logitBefore;
          after[c.tokenId] = c.logitAfter;
        }
        const db = demeanedPreSoftcap(before, cap);
        const da = demeanedPreSoftcap(after, cap);
        result.logitTokens.forEach((t, k) => {
          const moved = da[t.tokenId] - db[t.tokenId];
          const edge = result.logitRows[k][a];
          const scale = Math.max(1e-3, Math.abs(edge));
          expect(Math.abs(moved + edge) / scale, `feature ${a} → logit ${t.tokenId}`).toBeLessThanOrEqual(
            1e-3,
          );
        });
      }
      await result.prepared.runner.release();
    } finally {
      await s.close();
    }
  });

  it('closed loop: no edit is the original model; an ablation zeroes the feature and moves downstream ones', async () => {
    const s = await open(fixture, tc);
    try {
      const prepared = await s.iv.attributor.prepare(tokenIds);
      const { space, cache } = prepared;
      // A layer-0 feature at the last position: downstream features there must react.
      const target = Array.from({ length: space.nActive }, (_, i) => i).find(
        (i) => space.featureLayer[i] === 0 && space.featurePosition[i] === cache.T - 1,
      )!;
      expect(target).toBeDefined();
      const edit = {
        layer: 0,
        feature: space.featureIndex[target],
        position: space.featurePosition[target],
        mode: 'ablate' as const,
      };
      const r = await s.iv.closedLoopIntervention(tokenIds, [edit], { top: 5, generate: 3 });
      // Before = the real model's next-token distribution.
      const V = cache.vocab;
      const ref = cache.logits.subarray((cache.T - 1) * V, cache.T * V);
      for (const p of r.before) expect(Math.abs(p.logit - ref[p.tokenId])).toBeLessThanOrEqual(1e-4);
      const own = r.activationChanges.find(
        (c) => c.layer === 0 && c.feature === edit.feature && c.position === edit.position,
      );
      expect(own?.after).toBe(0);
      expect(r.activationChanges.some((c) => c.layer > 0)).toBe(true);
      expect(r.generated).toHaveLength(3);
    } finally {
      await s.close();
    }
  });
});
