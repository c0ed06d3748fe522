/**
 * The big-checkpoint memory model on the demo model: with no resident budget the forward runs
 * one graph per layer with each layer's weights decoded for its run only, the unembedding is
 * streamed in chunks, and nothing is written to the compile cache; every hook, logit and
 * attribution edge equals the resident run's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { LogitHead } from '../../../electron/engine/model/logit-head.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { transcoderHookNames } from '../../../electron/engine/model/transcoder-encoder.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { maxAbsDiff } from './golden.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const TOKENS = [2, 651, 6037, 576, 2329, 10751, 26865, 603];
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-streamed-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

describe('streamed weights (no resident budget)', () => {
  it('runs one graph per layer and gives the resident run’s hooks and logits', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const tokens = TOKENS.map((t) => t % model.config.vocabSize);
    const resident = await ForwardPass.create(model, { transcoders: set });
    const streamed = await ForwardPass.create(model, { transcoders: set, residentWeightBytes: 0 });
    try {
      expect(resident.compiled.streamed).toBe(false);
      expect(resident.compiled.segments).toHaveLength(1);
      expect(streamed.compiled.streamed).toBe(true);
      expect(streamed.compiled.segments.map((s) => [s.from, s.to])).toEqual(
        Array.from({ length: model.config.nLayers }, (_, l) => [l, l + 1]),
      );
      const hooks = [
        'logits',
        'logits_pre_softcap',
        'unembed.mean_row',
        'hook_embed',
        'ln_final.hook_scale',
        ...Array.from({ length: model.config.nLayers }, (_, l) => [
          `blocks.${l}.hook_resid_post`,
          `blocks.${l}.attn.hook_pattern`,
          transcoderHookNames(l).acts,
        ]).flat(),
      ];
      const a = await resident.run(tokens, hooks);
      const b = await streamed.run(tokens, hooks);
      for (const h of hooks) {
        expect(b.get(h)!.dims, h).toEqual(a.get(h)!.dims);
        expect(maxAbsDiff(b.get(h)!.data, a.get(h)!.data), h).toBeLessThanOrEqual(1e-5);
      }
      // Streamed weights are decoded per run, never kept; the resident run keeps them.
      expect(streamed.feeder.residentBytes).toBe(0);
      expect(streamed.feeder.peakStreamedBytes).toBeGreaterThan(0);
      expect(resident.feeder.residentBytes).toBeGreaterThan(0);
      // Only the last position's logits when asked.
      const last = await streamed.run(tokens, ['logits'], { logitPositions: 'last' });
      const V = model.config.vocabSize;
      const T = tokens.length;
      expect(last.get('logits')!.dims).toEqual([1, V]);
      expect(
        maxAbsDiff(last.get('logits')!.data, a.get('logits')!.data.subarray((T - 1) * V)),
      ).toBeLessThanOrEqual(1e-5);
    } finally {
      await Promise.all([resident.close(), streamed.close()]);
      set.close();
      model.close();
    }
  });

  it('streams the unembedding in chunks: same logits and mean row as one pass', async () => {
    const model = openModel(DEMO_DIR);
    const d = model.config.hiddenSize;
    const name = model.weightNames.lmHead ?? model.weightNames.embed;
    const whole = await LogitHead.create(model.tensors, name, model.config.finalSoftcap);
    // 100 rows per chunk: 2304 rows in 24 chunks, the last one short.
    const chunked = await LogitHead.create(model.tensors, name, model.config.finalSoftcap, {
      residentBytes: 0,
      chunkBytes: 100 * d * 4,
    });
    try {
      const x = Float32Array.from({ length: 3 * d }, (_, i) => Math.sin(i * 0.37));
      const a = await whole.logitsPre(x, 3);
      const b = await chunked.logitsPre(x, 3);
      expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(await whole.meanRow(), await chunked.meanRow())).toBeLessThanOrEqual(1e-6);
      // The mean row against a direct float64 mean of the unembedding.
      const U = model.tensors.readFloat32(name);
      const V = U.length / d;
      const mean = new Float64Array(d);
      for (let v = 0; v < V; v++) for (let k = 0; k < d; k++) mean[k] += U[v * d + k] / V;
      expect(maxAbsDiff(await chunked.meanRow(), Float32Array.from(mean))).toBeLessThanOrEqual(1e-6);
      // Softcap: tanh(x / cap) · cap.
      const cap = model.config.finalSoftcap!;
      expect(chunked.applySoftcap(Float32Array.of(0, 60, -3))).toEqual(
        Float32Array.of(0, Math.tanh(2) * cap, Math.tanh(-3 / cap) * cap),
      );
    } finally {
      await Promise.all([whole.close(), chunked.close()]);
      model.close();
    }
  });

  it.each(['plt', 'clt'])(
    '%s attribution: the same graph, and nothing written to the compile cache',
    async (tc) => {
      const model = openModel(DEMO_DIR);
      const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', tc));
      const tokens = TOKENS.map((t) => t % model.config.vocabSize);
      const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 64 };
      const resident = await Attributor.create(model, set, { cacheRoot });
      const streamed = await Attributor.create(model, set, { cacheRoot, residentWeightBytes: 0 });
      try {
        const a = (await resident.attribute(tokens, settings)).graph;
        const b = (await streamed.attribute(tokens, settings)).graph;
        expect(Array.from(b.nodes.features.index)).toEqual(Array.from(a.nodes.features.index));
        expect(Array.from(b.nodes.logits.tokenId)).toEqual(Array.from(a.nodes.logits.tokenId));
        const N = Math.sqrt(a.adjacency.length);
        let worst = 0;
        for (let t = 0; t < N; t++) {
          const row = a.adjacency.subarray(t * N, (t + 1) * N);
          const scale = row.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
          for (let s = 0; s < N; s++)
            worst = Math.max(worst, Math.abs(b.adjacency[t * N + s] - row[s]) / scale);
        }
        expect(worst).toBeLessThanOrEqual(1e-5);
        expect(fs.readdirSync(cacheRoot)).toEqual([]);
      } finally {
        await Promise.all([resident.close(), streamed.close()]);
        set.close();
        model.close();
      }
    },
  );
});
