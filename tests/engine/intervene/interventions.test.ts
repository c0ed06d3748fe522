/**
 * Interventions: open loop agrees with the graph's edges (ablating a feature moves each logit
 * target by −edge); closed loop with no edit is the original model; edits propagate; frozen
 * attention holds every pattern; cancellation and progress.
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
      // The three features with the largest direct edge into the top logit.
      const row = result.logitRows[0];
      const strongest = Array.from({ length: space.nActive }, (_, i) => i)
        .sort((a, b) => Math.abs(row[b]) - Math.abs(row[a]))
        .slice(0, 3);
      const targets = result.logitTokens.map((t) => t.tokenId);
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
          { trackTokens: targets },
          result.prepared,
        );
        result.logitTokens.forEach((t, k) => {
          const moved = r.targetLogitChanges![k];
          expect(moved.tokenId).toBe(t.tokenId);
          const edge = result.logitRows[k][a];
          // Floor: 1e-2 of the target's largest feature edge (tiny edges carry the same absolute rounding).
          let largest = 0;
          for (let i = 0; i < space.nActive; i++)
            largest = Math.max(largest, Math.abs(result.logitRows[k][i]));
          const scale = Math.max(1e-2 * largest, Math.abs(edge));
          expect(
            Math.abs(moved.delta + edge) / scale,
            `feature ${a} → logit ${t.tokenId}`,
          ).toBeLessThanOrEqual(1e-4);
        });
        // Tracked tokens are reported in `changes` even outside the top lists.
        for (const id of targets) expect(r.changes.some((c) => c.tokenId === id)).toBe(true);
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
      const ref = cache.logits;
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

describe.each([
  ['tiny-gemma2', 'clt'],
  ['tiny-llama', 'plt-skip'],
  ['tiny-gpt2', 'plt'],
] as [FixtureName, string][])('frozen attention, cancel and progress on %s / %s', (fixture, tc) => {
  const tokenIds = loadGolden(fixture).cases[0].token_ids;
  const T = tokenIds.length;

  /** An active feature at `layer`, at its earliest position ≥ 1 (or its latest). */
  async function activeFeature(s: Awaited<ReturnType<typeof open>>, layer: number, latest = false) {
    const { space } = await s.iv.attributor.prepare(tokenIds);
    let best = -1;
    const sign = latest ? -1 : 1;
    for (let i = 0; i < space.nActive; i++) {
      if (space.featureLayer[i] !== layer) continue;
      if (best < 0 || sign * (space.featurePosition[i] - space.featurePosition[best]) < 0) best = i;
    }
    expect(best).toBeGreaterThanOrEqual(0);
    return { layer, feature: space.featureIndex[best], position: space.featurePosition[best] };
  }

  it('freezeAttention: an identity edit reproduces the original logits exactly; an edit leaves every pattern as it was', async () => {
    const s = await open(fixture, tc);
    try {
      const L = s.set.nLayers;
      const early = await activeFeature(s, 0);
      // Identity edit (scale 1): the frozen patterns fed back must give the original model bit for bit.
      const same = await s.iv.closedLoopIntervention(tokenIds, [{ ...early, mode: 'scale', value: 1 }], {
        top: 5,
        freezeAttention: true,
      });
      for (const c of same.changes) expect(c.logitAfter).toBe(c.logitBefore);
      expect(same.activationChanges).toHaveLength(0);

      const original = await s.iv.closedLoopPatterns(tokenIds);
      expect(original).toHaveLength(L);
      const ablate = [{ ...early, mode: 'ablate' as const }];
      const frozen = await s.iv.closedLoopPatterns(tokenIds, ablate, { freezeAttention: true });
      const live = await s.iv.closedLoopPatterns(tokenIds, ablate);
      let liveMoved = 0;
      for (let l = 0; l < L; l++) {
        expect(Array.from(frozen[l])).toEqual(Array.from(original[l]));
        for (let i = 0; i < original[l].length; i++)
          liveMoved = Math.max(liveMoved, Math.abs(live[l][i] - original[l][i]));
      }
      // Without freezing, the edit does move later layers' patterns (so the check above can fail).
      expect(liveMoved).toBeGreaterThan(1e-6);

      // And the outputs differ accordingly, while an edit in the last layer (no attention
      // downstream of it) gives the same result either way.
      const a = await s.iv.closedLoopIntervention(tokenIds, ablate, { top: 5, freezeAttention: true });
      const b = await s.iv.closedLoopIntervention(tokenIds, ablate, { top: 5 });
      const gap = Math.max(
        ...a.targetLogitChanges!.map((c, k) => Math.abs(c.after - b.targetLogitChanges![k].after)),
      );
      expect(gap).toBeGreaterThan(1e-6);
      const last = [{ ...(await activeFeature(s, L - 1, true)), mode: 'ablate' as const }];
      expect(last[0].position).toBe(T - 1);
      const c = await s.iv.closedLoopIntervention(tokenIds, last, { top: 5, freezeAttention: true });
      const d = await s.iv.closedLoopIntervention(tokenIds, last, { top: 5 });
      expect(c.changes.map((x) => x.logitAfter)).toEqual(d.changes.map((x) => x.logitAfter));
      expect(c.changes.some((x) => x.logitAfter !== x.logitBefore)).toBe(true);

      await expect(
        s.iv.closedLoopIntervention(tokenIds, ablate, { freezeAttention: true, generate: 2 }),
      ).rejects.toMatchObject({ code: 'argument', field: 'freezeAttention' });
      await expect(s.iv.openLoop(tokenIds, ablate, { freezeAttention: true })).rejects.toMatchObject({
        code: 'argument',
        field: 'freezeAttention',
      });
    } finally {
      await s.close();
    }
  });

  it('progress phases in order, and an abort between session runs throws cancelled', async () => {
    const s = await open(fixture, tc);
    try {
      const edit = [{ ...(await activeFeature(s, 0)), mode: 'ablate' as const }];
      const seen: string[] = [];
      const onProgress = (p: { phase: string; done: number; total: number }) =>
        seen.push(`${p.phase} ${p.done}/${p.total}`);
      const r = await s.iv.closedLoopIntervention(tokenIds, edit, { generate: 3, onProgress });
      expect(r.generated).toHaveLength(3);
      expect(seen).toEqual([
        'baseline 0/1',
        'baseline 1/1',
        'intervene 0/1',
        'intervene 1/1',
        'generate 0/3',
        'generate 1/3',
        'generate 2/3',
        'generate 3/3',
      ]);
      seen.length = 0;
      await s.iv.openLoop(tokenIds, edit, { onProgress });
      expect(seen).toEqual([
        'prepare 0/1',
        'prepare 1/1',
        'baseline 0/1',
        'baseline 1/1',
        'intervene 0/1',
        'intervene 1/1',
      ]);

      // Already aborted: nothing runs.
      const aborted = new AbortController();
      aborted.abort();
      for (const run of [
        () => s.iv.closedLoopIntervention(tokenIds, edit, { signal: aborted.signal }),
        () => s.iv.openLoop(tokenIds, edit, { signal: aborted.signal }),
      ]) {
        await expect(run()).rejects.toMatchObject({ code: 'cancelled' });
      }
      // Aborted mid-way (after the baseline run, during generation): stops at the next check.
      for (const stopAt of ['baseline 1/1', 'generate 1/3']) {
        const ctl = new AbortController();
        const phases: string[] = [];
        await expect(
          s.iv.closedLoopIntervention(tokenIds, edit, {
            generate: 3,
            signal: ctl.signal,
            onProgress: (p) => {
              const tag = `${p.phase} ${p.done}/${p.total}`;
              phases.push(tag);
              if (tag === stopAt) ctl.abort();
            },
          }),
        ).rejects.toMatchObject({ code: 'cancelled' });
        expect(phases[phases.length - 1]).toBe(stopAt);
      }
    } finally {
      await s.close();
    }
  });
});
