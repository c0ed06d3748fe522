/**
 * The embedded demo model (resources/models/gemma2-demo) against the PyTorch program that
 * trained it (tests/golden/demo-gemma2.json), and attribution / intervention properties on
 * it with both of its transcoder sets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Attributor } from '../../electron/engine/attribution/attribute.ts';
import { frozenTargetValues } from '../../electron/engine/attribution/frozen-targets.ts';
import { Intervener } from '../../electron/engine/intervene/interventions.ts';
import { ForwardPass } from '../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../electron/engine/model/open-model.ts';
import {
  activeFeatures,
  reconstruct,
  reconstructionErrors,
} from '../../electron/engine/model/replacement.ts';
import { transcoderHookNames } from '../../electron/engine/model/transcoder-encoder.ts';
import { loadTokenizer } from '../../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../electron/engine/transcoders/load.ts';
import { loadGolden, maxAbsDiff } from './model/golden.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../resources/models/gemma2-demo');
const DEMO_PROMPT = 'The capital of state containing Dallas is';
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-demo-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

describe('demo model forward pass matches the PyTorch program that trained it', () => {
  const golden = loadGolden('demo-gemma2');

  it('logits and every hook', async () => {
    const model = openModel(DEMO_DIR);
    const fp = await ForwardPass.create(model);
    try {
      for (const c of golden.cases) {
        const hooks = Object.keys(c.hooks);
        const out = await fp.run(c.token_ids, ['logits', 'logits_pre_softcap', ...hooks]);
        expect(maxAbsDiff(out.get('logits')!.data, c.logits.flat())).toBeLessThanOrEqual(1e-4);
        expect(
          maxAbsDiff(out.get('logits_pre_softcap')!.data, c.logits_pre_softcap.flat()),
        ).toBeLessThanOrEqual(1e-4);
        for (const h of hooks)
          expect(maxAbsDiff(out.get(h)!.data, c.hooks[h].data), h).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await fp.close();
      model.close();
    }
  });

  it.each(['plt', 'clt'])('%s transcoders: activations and reconstruction errors', async (tc) => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', tc));
    const fp = await ForwardPass.create(model, { transcoders: set });
    try {
      for (const c of golden.cases) {
        const g = c.transcoders![tc];
        const T = c.token_ids.length;
        const L = set.nLayers;
        const names = Array.from({ length: L }, (_, l) => [
          transcoderHookNames(l).acts,
          `blocks.${l}.${set.readHook}`,
          `blocks.${l}.${set.writeHook}`,
        ]).flat();
        const out = await fp.run(c.token_ids, names);
        const active = Array.from({ length: L }, (_, l) => {
          const acts = out.get(transcoderHookNames(l).acts)!.data;
          expect(maxAbsDiff(acts, g.activations[String(l)].data), `layer ${l}`).toBeLessThanOrEqual(1e-4);
          return activeFeatures(acts, T, set.dTranscoderPerLayer[l], l);
        });
        const reads = Array.from({ length: L }, (_, l) => out.get(`blocks.${l}.${set.readHook}`)!.data);
        const mlp = Array.from({ length: L }, (_, l) => out.get(`blocks.${l}.${set.writeHook}`)!.data);
        const errors = reconstructionErrors(mlp, reconstruct(set, active, T, reads), set.dModel);
        for (let l = 0; l < L; l++) {
          expect(
            maxAbsDiff(errors[l], g.reconstruction_error[String(l)].data),
            `layer ${l}`,
          ).toBeLessThanOrEqual(1e-4);
        }
      }
    } finally {
      await fp.close();
      set.close();
      model.close();
    }
  });
});

describe.each(['plt', 'clt'])('demo model attribution with %s transcoders', (tc) => {
  it('predicts " Austin", is complete for every target, and open-loop ablations move logits by −edge', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', tc));
    const tokenizer = await loadTokenizer(DEMO_DIR);
    const iv = await Intervener.create(model, set, { cacheRoot });
    try {
      const ids = tokenizer.encodePrompt(DEMO_PROMPT);
      const r = await iv.attributor.attribute(ids, {
        maxNLogits: 10,
        desiredLogitProb: 0.95,
        batchSize: 128,
      });
      expect(tokenizer.tokenToString(r.logitTokens[0].tokenId)).toBe(' Austin');

      const refs = [
        ...r.selected.map((a) => ({ kind: 'feature' as const, active: a })),
        ...r.logitTokens.map((t) => ({ kind: 'logit' as const, tokenId: t.tokenId })),
      ];
      const rows = [...r.selected.map((a) => r.featureRows.get(a)!), ...r.logitRows];
      const constants = await frozenTargetValues(r.prepared, refs, () => 0);
      const full = await frozenTargetValues(r.prepared, refs);
      const { cache, space } = r.prepared;
      const V = cache.vocab;
      const last = cache.logitsPreSoftcap;
      const mean = last.reduce((a, b) => a + b, 0) / V;
      rows.forEach((row, k) => {
        const ref = refs[k];
        const actual =
          ref.kind === 'logit'
            ? last[ref.tokenId] - mean
            : cache.preActivations[space.featureLayer[ref.active]][
                space.featurePosition[ref.active] * set.dTranscoderPerLayer[space.featureLayer[ref.active]] +
                  space.featureIndex[ref.active]
              ];
        let sum = constants[k];
        for (const v of row) sum += v;
        expect(Math.abs(sum - actual) / Math.max(Math.abs(actual), 1e-2), `target ${k}`).toBeLessThanOrEqual(
          1e-4,
        );
        expect(Math.abs(full[k] - actual) / Math.max(Math.abs(actual), 1e-2)).toBeLessThanOrEqual(1e-4);
      });

      // Open loop through the intervention API: ablating one feature moves every logit target's
      // demeaned pre-softcap logit by minus that feature's edge (the bar: ≤ 1e-4
      // relative). Ten logit targets (desired probability 1), each target's 3 strongest
      // features, every target checked for each. Relative to |edge|, floored at 1e-2 × the
      // target's largest feature edge: an edge 100× below the row's largest is compared at that
      // scale (its float32 rounding, ~1e-7 absolute here, is no smaller than a big edge's).
      // Measured: max 2.4e-5 (plt) and 1.8e-5 (clt) here (3.2e-5 / 3.1e-5 over each target's 10
      // strongest); subtracting two full runs' logits instead gives 3.1e-4 / 1.3e-4 (the
      // logits' own float32 rounding), so this check fails on that.
      const all = await iv.attributor.attribute(ids, {
        maxNLogits: 10,
        desiredLogitProb: 1,
        batchSize: 128,
      });
      expect(all.logitTokens).toHaveLength(10);
      const targets = all.logitTokens.map((t) => t.tokenId);
      const aspace = all.prepared.space;
      const byStrength = (row: Float32Array) =>
        Array.from({ length: aspace.nActive }, (_, i) => i).sort(
          (a, b) => Math.abs(row[b]) - Math.abs(row[a]),
        );
      const floors = all.logitRows.map((row) => 1e-2 * Math.abs(row[byStrength(row)[0]]));
      const strongest = [...new Set(all.logitRows.flatMap((row) => byStrength(row).slice(0, 3)))];
      let worst = 0;
      for (const a of strongest) {
        const res = await iv.openLoop(
          ids,
          [
            {
              layer: aspace.featureLayer[a],
              feature: aspace.featureIndex[a],
              position: aspace.featurePosition[a],
              mode: 'ablate',
            },
          ],
          { trackTokens: targets },
          all.prepared,
        );
        const moved = res.targetLogitChanges!;
        expect(moved.map((c) => c.tokenId)).toEqual(targets);
        targets.forEach((_, k) => {
          const edge = all.logitRows[k][a];
          const err = Math.abs(moved[k].delta + edge) / Math.max(Math.abs(edge), floors[k]);
          worst = Math.max(worst, err);
          // The reported before/after agree with the change to the logits' own float32 rounding.
          expect(Math.abs(moved[k].after - moved[k].before - moved[k].delta)).toBeLessThanOrEqual(1e-4);
        });
      }
      expect(worst).toBeLessThanOrEqual(1e-4);
      expect(worst).toBeGreaterThan(0);
    } finally {
      await iv.close();
      set.close();
      model.close();
    }
  });
});

describe.each(['plt', 'clt'])(
  'demo model adjacency with %s transcoders matches the PyTorch reference',
  (tc) => {
    it('node table and every entry (≤ 1e-4 of its row scale)', async () => {
      const golden = JSON.parse(
        fs.readFileSync(
          path.resolve(import.meta.dirname, `../golden/attribution-gemma2-demo-${tc}.json`),
          'utf8',
        ),
      ) as {
        token_ids: number[];
        features: { layer: number[]; position: number[]; index: number[] };
        logits: { token_id: number[] };
        adjacency: number[][];
      };
      const model = openModel(DEMO_DIR);
      const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', tc));
      const attributor = await Attributor.create(model, set, { cacheRoot });
      try {
        const tokenizer = await loadTokenizer(DEMO_DIR);
        expect(tokenizer.encodePrompt(DEMO_PROMPT)).toEqual(golden.token_ids);
        const { graph } = await attributor.attribute(golden.token_ids, {
          maxNLogits: 10,
          desiredLogitProb: 0.95,
          batchSize: 128,
        });
        expect(Array.from(graph.nodes.features.layer)).toEqual(golden.features.layer);
        expect(Array.from(graph.nodes.features.position)).toEqual(golden.features.position);
        expect(Array.from(graph.nodes.features.index)).toEqual(golden.features.index);
        expect(Array.from(graph.nodes.logits.tokenId)).toEqual(golden.logits.token_id);
        const N = golden.adjacency.length;
        expect(graph.adjacency.length).toBe(N * N);
        let worst = 0;
        for (let t = 0; t < N; t++) {
          const ref = golden.adjacency[t];
          const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          for (let s = 0; s < N; s++) {
            const diff = Math.abs(graph.adjacency[t * N + s] - ref[s]);
            worst = Math.max(worst, scale === 0 ? diff : diff / scale);
          }
        }
        expect(worst).toBeLessThanOrEqual(1e-4);
      } finally {
        await attributor.close();
        set.close();
        model.close();
      }
    });
  },
);
