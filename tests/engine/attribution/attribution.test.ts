/**
 * Attribution against mathematics and an independent reference:
 *  - the adjacency matches native/reference/attribution.py (float64 autograd with frozen
 *    patterns and norm scales, the way circuit-tracer computes it) to ≤ 1e-4 relative;
 *  - completeness: Σ_s A[t,s] + c_t = pre-activation(t) for every target;
 *  - intervention consistency: zeroing a source in the frozen model moves every target by −A[t,s];
 *  - causality, and feature selection under a cap.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type AttributionResult, Attributor } from '../../../electron/engine/attribution/attribute.ts';
import { frozenTargetValues, type TargetRef } from '../../../electron/engine/attribution/frozen-targets.ts';
import { nodeLayout } from '../../../electron/engine/attribution/graph-types.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { type FixtureName, fixturePath, writeTranscoders } from '../../fixtures/tiny-checkpoints.ts';
import { GOLDEN_DIR } from '../model/golden.ts';

interface AttributionGolden {
  token_ids: number[];
  n_layers: number;
  n_positions: number;
  features: { layer: number[]; position: number[]; index: number[]; activation: number[] };
  logits: { token_id: number[]; probability: number[] };
  adjacency: number[][];
}

const CASES: [FixtureName, string][] = [
  ['tiny-gemma2', 'plt'],
  ['tiny-gemma2', 'clt'],
  ['tiny-llama', 'plt-skip'],
  ['tiny-gpt2', 'plt'],
  ['tiny-qwen3', 'plt-topk'],
];

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-attr-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

async function attributeFixture(
  fixture: FixtureName,
  tc: string,
  tokenIds: number[],
  maxFeatureNodes?: number,
) {
  const model = openModel(fixturePath(fixture));
  const set = loadTranscoderSet(path.join(fixturePath(fixture), 'transcoders', tc));
  const attributor = await Attributor.create(model, set, { cacheRoot });
  const result = await attributor.attribute(tokenIds, {
    maxNLogits: 10,
    desiredLogitProb: 0.95,
    batchSize: 64,
    maxFeatureNodes,
  });
  return {
    result,
    set,
    async close() {
      await result.prepared.runner.release();
      await attributor.close();
      set.close();
      model.close();
    },
  };
}

/** The value every target's row explains: its pre-activation (feature) or demeaned pre-softcap logit. */
function targetValues(r: AttributionResult, dT: readonly number[]): number[] {
  const { cache, space } = r.prepared;
  const features = r.selected.map((a) => {
    const l = space.featureLayer[a];
    return cache.preActivations[l][space.featurePosition[a] * dT[l] + space.featureIndex[a]];
  });
  const V = cache.vocab;
  const row = cache.logitsPreSoftcap;
  let mean = 0;
  for (const v of row) mean += v;
  mean /= V;
  return [...features, ...r.logitTokens.map((t) => row[t.tokenId] - mean)];
}

const targetRefs = (r: AttributionResult): TargetRef[] => [
  ...r.selected.map((a) => ({ kind: 'feature' as const, active: a })),
  ...r.logitTokens.map((t) => ({ kind: 'logit' as const, tokenId: t.tokenId })),
];

/**
 * Completeness (Σ_s A[t,s] + c_t = the target's value, every row over the full source space) and
 * intervention consistency on a sample of sources (features, errors, tokens), to 1e-4.
 */
async function expectCompleteAndConsistent(result: AttributionResult, dT: readonly number[]): Promise<void> {
  // Completeness for every target (rows over the full source space).
  const refs = targetRefs(result);
  const rows = [...result.selected.map((a) => result.featureRows.get(a)!), ...result.logitRows];
  const constants = await frozenTargetValues(result.prepared, refs, () => 0);
  const values = targetValues(result, dT);
  rows.forEach((row, k) => {
    let sum = constants[k];
    for (const v of row) sum += v;
    const rel = Math.abs(sum - values[k]) / Math.max(Math.abs(values[k]), 1e-2);
    expect({ target: k, rel }).toEqual({ target: k, rel: expect.toSatisfy((x: number) => x <= 1e-4) });
  });

  // Intervention consistency on a sample of sources: features, errors and tokens.
  const { space } = result.prepared;
  const base = await frozenTargetValues(result.prepared, refs);
  const sample = new Set<number>();
  for (let i = 0; i < 8; i++) sample.add(Math.floor((i * space.nActive) / 8));
  sample.add(space.errorOffset + space.nColumns - space.tokenOffset + 1);
  sample.add(space.tokenOffset + 1);
  sample.add(space.tokenOffset + result.prepared.cache.T - 1);
  for (const col of sample) {
    const ablated = await frozenTargetValues(result.prepared, refs, (c) => (c === col ? 0 : 1));
    let scale = 1e-6;
    for (const row of rows) scale = Math.max(scale, Math.abs(row[col]));
    rows.forEach((row, k) => {
      const moved = ablated[k] - base[k];
      expect(Math.abs(moved + row[col]) / scale, `source column ${col}, target ${k}`).toBeLessThanOrEqual(
        1e-4,
      );
    });
  }
}

describe.each(CASES)('attribution on %s / %s', (fixture, tc) => {
  const golden = JSON.parse(
    fs.readFileSync(path.join(GOLDEN_DIR, `attribution-${fixture}-${tc}.json`), 'utf8'),
  ) as AttributionGolden;

  it('matches the PyTorch reference adjacency and node table, and is complete and consistent', async () => {
    const run = await attributeFixture(fixture, tc, golden.token_ids);
    try {
      const { result } = run;
      const { graph } = result;
      const f = graph.nodes.features;
      expect(Array.from(f.layer)).toEqual(golden.features.layer);
      expect(Array.from(f.position)).toEqual(golden.features.position);
      expect(Array.from(f.index)).toEqual(golden.features.index);
      expect(Array.from(graph.nodes.logits.tokenId)).toEqual(golden.logits.token_id);
      const N = nodeLayout(graph.nodes).total;
      expect(N).toBe(golden.adjacency.length);

      // Adjacency: max |diff| relative to the largest entry of its row.
      let worst = 0;
      for (let t = 0; t < N; t++) {
        const ref = golden.adjacency[t];
        let scale = 0;
        for (const v of ref) scale = Math.max(scale, Math.abs(v));
        if (scale === 0) {
          for (let s = 0; s < N; s++) expect(graph.adjacency[t * N + s]).toBe(0);
          continue;
        }
        for (let s = 0; s < N; s++)
          worst = Math.max(worst, Math.abs(graph.adjacency[t * N + s] - ref[s]) / scale);
      }
      expect(worst).toBeLessThanOrEqual(1e-4);

      await expectCompleteAndConsistent(result, run.set.dTranscoderPerLayer);
    } finally {
      await run.close();
    }
  });

  it('is causal: no edge from a later position, none from layer ≥ l into a layer-l feature', async () => {
    const run = await attributeFixture(fixture, tc, golden.token_ids);
    try {
      const { graph } = run.result;
      const lay = nodeLayout(graph.nodes);
      const N = lay.total;
      const f = graph.nodes.features;
      const T = graph.nodes.nPositions;
      const posOf = (i: number) =>
        i < lay.nFeatures
          ? f.position[i]
          : i < lay.tokenOffset
            ? (i - lay.errorOffset) % T
            : i < lay.logitOffset
              ? i - lay.tokenOffset
              : T - 1;
      const layerOf = (i: number) =>
        i < lay.nFeatures ? f.layer[i] : i < lay.tokenOffset ? Math.floor((i - lay.errorOffset) / T) : -1;
      let edges = 0;
      for (let t = 0; t < lay.nFeatures; t++) {
        for (let s = 0; s < lay.logitOffset; s++) {
          const w = graph.adjacency[t * N + s];
          if (w === 0) continue;
          edges++;
          expect(posOf(s)).toBeLessThanOrEqual(posOf(t));
          expect(layerOf(s)).toBeLessThan(f.layer[t]);
        }
      }
      expect(edges).toBeGreaterThan(0);
      // Logit columns are zero: logits are never sources.
      for (let t = 0; t < N; t++)
        for (let s = lay.logitOffset; s < N; s++) expect(graph.adjacency[t * N + s]).toBe(0);
    } finally {
      await run.close();
    }
  });
});

describe('feature selection under max_feature_nodes', () => {
  it('keeps exactly the cap, with rows identical to the uncapped graph, and the most influential first', async () => {
    const golden = JSON.parse(
      fs.readFileSync(path.join(GOLDEN_DIR, 'attribution-tiny-gpt2-plt.json'), 'utf8'),
    ) as AttributionGolden;
    const full = await attributeFixture('tiny-gpt2', 'plt', golden.token_ids);
    const capped = await attributeFixture('tiny-gpt2', 'plt', golden.token_ids, 40);
    try {
      expect(capped.result.selected).toHaveLength(40);
      expect(capped.result.graph.nodes.features.layer).toHaveLength(40);
      for (const a of capped.result.selected) {
        const rowCapped = capped.result.featureRows.get(a)!;
        const rowFull = full.result.featureRows.get(a)!;
        let m = 0;
        for (let i = 0; i < rowFull.length; i++) m = Math.max(m, Math.abs(rowCapped[i] - rowFull[i]));
        expect(m).toBeLessThanOrEqual(1e-5);
      }
      // Every feature with a direct edge into the top logit that is among the 10 strongest is selected.
      const top = full.result.logitRows[0];
      const strongest = Array.from({ length: full.result.prepared.space.nActive }, (_, i) => i)
        .sort((a, b) => Math.abs(top[b]) - Math.abs(top[a]))
        .slice(0, 5);
      for (const a of strongest) expect(capped.result.selected).toContain(a);
    } finally {
      await full.close();
      await capped.close();
    }
  });
});

describe('attribution with a transcoder that reads at hook_resid_pre (no reference golden)', () => {
  it('is complete and consistent: its features are injected before attention, not after', async () => {
    // The backward injects feature targets only at their read slot (resid_pre here, resid_mid
    // for every other read hook): a target injected at the wrong slot would skip or double
    // its layer's attention and break completeness.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-resid-pre-'));
    writeTranscoders('tiny-gemma2', 'plt-resid-pre', dir);
    const golden = JSON.parse(
      fs.readFileSync(path.join(GOLDEN_DIR, 'attribution-tiny-gemma2-plt.json'), 'utf8'),
    ) as AttributionGolden;
    const model = openModel(fixturePath('tiny-gemma2'));
    const set = loadTranscoderSet(dir);
    const attributor = await Attributor.create(model, set, { cacheRoot });
    try {
      expect(set.readHook).toBe('hook_resid_pre');
      const result = await attributor.attribute(golden.token_ids, {
        maxNLogits: 10,
        desiredLogitProb: 0.95,
        batchSize: 64,
      });
      const { space } = result.prepared;
      expect(result.selected.length).toBeGreaterThan(4);
      // Features at layers above 0, whose rows cross at least one attention layer.
      expect(result.selected.some((a) => space.featureLayer[a] > 0)).toBe(true);
      await expectCompleteAndConsistent(result, set.dTranscoderPerLayer);
      await result.prepared.runner.release();

      // The GPU form (select injection, rows gathered in the graph), in batches of 3: truncated
      // graphs whose top layer injects before any attention (nothing carried back through it).
      vi.stubEnv('CIRCUIT_BACKWARD_INJECTION', 'select');
      vi.stubEnv('CIRCUIT_BACKWARD_OUTPUTS', 'rows');
      const gpuForm = await Attributor.create(model, set, { cacheRoot });
      try {
        const settings = { maxNLogits: 10, desiredLogitProb: 0.95 };
        const cpu = await attributor.attribute(golden.token_ids, { ...settings, batchSize: 3 });
        const gpu = await gpuForm.attribute(golden.token_ids, { ...settings, batchSize: 3 });
        expect(gpu.backward.runs).toBeGreaterThan(4);
        expect(gpu.graph.adjacency).toEqual(cpu.graph.adjacency);
        await cpu.prepared.runner.release();
        await gpu.prepared.runner.release();
      } finally {
        vi.unstubAllEnvs();
        await gpuForm.close();
      }
    } finally {
      await attributor.close();
      set.close();
      model.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('encoder rows of active features', () => {
  it('are gathered from the resident encoder, not read from the files, even stored [d, d_t]', async () => {
    // GemmaScope stores W_enc [d, d_t]: a feature's row is a column, and reading it from the
    // file reads the whole matrix. Resident, it is gathered; streamed, read; the graphs agree.
    const model = openModel(fixturePath('tiny-gemma2'));
    const set = loadTranscoderSet(path.join(fixturePath('tiny-gemma2'), 'transcoders', 'gemmascope'));
    const resident = await Attributor.create(model, set, { cacheRoot });
    const streamed = await Attributor.create(model, set, { cacheRoot, residentWeightBytes: 0 });
    try {
      expect(set.encoderInfo(0).encoderTransposed).toBe(true);
      const ids = [2, 7, 19, 4, 11, 23, 5];
      const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 32 };
      const a = await resident.attribute(ids, settings);
      const b = await streamed.attribute(ids, settings);
      expect(a.prepared.space.nActive).toBeGreaterThan(4);
      expect(resident.encoderRows.counts).toEqual({ gathered: expect.any(Number), read: 0 });
      expect(resident.encoderRows.counts.gathered).toBeGreaterThan(0);
      expect(streamed.encoderRows.counts).toEqual({ gathered: 0, read: expect.any(Number) });
      expect(a.prepared.encoderRows).toEqual(b.prepared.encoderRows);
      expect(a.graph.adjacency).toEqual(b.graph.adjacency);
      await expectCompleteAndConsistent(a, set.dTranscoderPerLayer);
      await a.prepared.runner.release();
      await b.prepared.runner.release();
    } finally {
      await resident.close();
      await streamed.close();
      set.close();
      model.close();
    }
  });
});
