/**
 * Interventions on the demo model, "The capital of state containing Dallas is" → " Austin",
 * with both transcoder sets: the robust part of bench/intervene-demo.ts (which prints the
 * figures). Ablating the features on the strongest " Dallas" → " Austin" paths lowers
 * p(" Austin") in every loop; swapping the Texas features for the California ones (found by
 * contrast between prompts, activations from the Oakland prompt, ×2) turns the answer into
 * " Sacramento".
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type FeatureIntervention, Intervener } from '../../../electron/engine/intervene/interventions.ts';
import { strongestPaths } from '../../../electron/engine/intervene/paths.ts';
import { featureEdit } from '../../../electron/engine/intervene/spec.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { loadTokenizer } from '../../../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const prompt = (city: string) => `The capital of state containing ${city} is`;
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-demo-iv-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

describe.each(['plt', 'clt'])('demo model interventions with %s transcoders', (tc) => {
  it('path ablation lowers p(" Austin"); a Texas → California feature swap answers " Sacramento"', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', tc));
    const tokenizer = await loadTokenizer(DEMO_DIR);
    const iv = await Intervener.create(model, set, { cacheRoot });
    try {
      const word = (w: string) => tokenizer.encodePrompt(w)[1];
      const AUSTIN = word(' Austin');
      const SACRAMENTO = word(' Sacramento');
      const ids = tokenizer.encodePrompt(prompt('Dallas'));
      const cityPos = ids.indexOf(word(' Dallas'));
      const r = await iv.attributor.attribute(ids, {
        maxNLogits: 10,
        desiredLogitProb: 0.95,
        batchSize: 128,
      });
      expect(r.logitTokens[0].tokenId).toBe(AUSTIN);
      const { space } = r.prepared;

      const paths = strongestPaths(r, space.tokenOffset + cityPos, 0, 3);
      expect(paths).toHaveLength(3);
      for (const p of paths) expect(p.weight).toBeGreaterThan(0);
      const onPaths = [...new Set(paths.flatMap((p) => p.features))];
      const ablatePaths: FeatureIntervention[] = onPaths.map((a) => ({
        layer: space.featureLayer[a],
        feature: space.featureIndex[a],
        position: space.featurePosition[a],
        mode: 'ablate',
      }));
      const track = { top: 5, trackTokens: [AUSTIN, SACRAMENTO] };
      const runs = [
        await iv.openLoop(ids, ablatePaths, track, r.prepared),
        await iv.closedLoopIntervention(ids, ablatePaths, track),
        await iv.closedLoopIntervention(ids, ablatePaths, { ...track, freezeAttention: true }),
      ];
      for (const res of runs) {
        const austin = res.changes.find((c) => c.tokenId === AUSTIN)!;
        // Measured (bench): 0.985 → 0.95–0.97; the margin keeps " Austin" first.
        expect(austin.probAfter).toBeLessThan(austin.probBefore - 0.01);
        expect(res.targetLogitChanges![0].delta).toBeLessThan(-0.5);
      }

      // State features by contrast: active at the city position or later for both cities of one
      // state and for neither of the other's.
      const activeAt = async (city: string) => {
        const p = await iv.attributor.prepare(tokenizer.encodePrompt(prompt(city)));
        const m = new Map<string, number>();
        for (let a = 0; a < p.space.nActive; a++) {
          if (p.space.featurePosition[a] >= cityPos)
            m.set(
              `${p.space.featureLayer[a]}:${p.space.featureIndex[a]}:${p.space.featurePosition[a]}`,
              p.space.featureActivation[a],
            );
        }
        return m;
      };
      const [dal, hou, oak, fre] = [
        await activeAt('Dallas'),
        await activeAt('Houston'),
        await activeAt('Oakland'),
        await activeAt('Fresno'),
      ];
      const texas = [...dal.keys()].filter((k) => hou.has(k) && !oak.has(k) && !fre.has(k));
      const california = [...oak.keys()].filter((k) => fre.has(k) && !dal.has(k) && !hou.has(k));
      expect(texas.length).toBeGreaterThan(5);
      expect(california.length).toBeGreaterThan(5);
      const edit = (k: string, mode: FeatureIntervention['mode'], value?: number): FeatureIntervention => {
        const [layer, feature, position] = k.split(':').map(Number);
        return featureEdit({ layer, feature, position }, mode, value);
      };
      const ablateTexas = texas.map((k) => edit(k, 'ablate'));
      const texasOnly = await iv.closedLoopIntervention(ids, ablateTexas, track);
      const austin = texasOnly.changes.find((c) => c.tokenId === AUSTIN)!;
      expect(austin.probAfter).toBeLessThan(austin.probBefore - 0.02);

      const swap = [...ablateTexas, ...california.map((k) => edit(k, 'set', oak.get(k)! * 2))];
      for (const freezeAttention of [false, true]) {
        const res = await iv.closedLoopIntervention(ids, swap, { ...track, freezeAttention });
        // Measured (bench): p(" Sacramento") 0.78–0.87, p(" Austin") ≤ 0.03.
        expect(res.before[0].tokenId).toBe(AUSTIN);
        expect(res.after[0].tokenId).toBe(SACRAMENTO);
        expect(res.after[0].prob).toBeGreaterThan(0.5);
      }
    } finally {
      await iv.close();
      set.close();
      model.close();
    }
  });
});
