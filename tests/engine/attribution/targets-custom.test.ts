/**
 * Caller-chosen attribution targets (target-spec.ts) on the demo model and the tiny
 * checkpoints of each family:
 *  - a `top1 − top2` target has, from every source, the edge of top1 minus the edge of top2
 *    in the ordinary (top-logit) graph, within 1e-4 of the row scale (linearity);
 *  - completeness: Σ_s A[t,s] + c_t = the target's value, for combination and vector targets;
 *  - intervention consistency: zeroing a source moves a direction target by −A[t,s];
 *  - bad specs are typed errors that name the target.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AttributionRunOptions,
  type AttributionSettings,
  Attributor,
} from '../../../electron/engine/attribution/attribute.ts';
import { frozenTargetValues } from '../../../electron/engine/attribution/frozen-targets.ts';
import { nodeLayout } from '../../../electron/engine/attribution/graph-types.ts';
import {
  type AttributionTargetSpec,
  resolveTargetSpecs,
  targetVocabulary,
} from '../../../electron/engine/attribution/target-spec.ts';
import { EngineError } from '../../../electron/engine/errors.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { loadTokenizer } from '../../../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { type FixtureName, fixturePath } from '../../fixtures/tiny-checkpoints.ts';
import { GOLDEN_DIR } from '../model/golden.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const DEMO_PROMPT = 'The capital of state containing Dallas is';
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-targets-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

/** All features get rows, so two graphs of one prompt have the same feature nodes. */
const ALL_FEATURES = 1_000_000_000;

type Case = {
  name: string;
  modelDir: string;
  tc: string;
  tokenIds: () => Promise<number[]>;
  tokenizer: boolean;
};

const tinyIds = (fixture: FixtureName, tc: string) => async () =>
  (
    JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, `attribution-${fixture}-${tc}.json`), 'utf8')) as {
      token_ids: number[];
    }
  ).token_ids;

const CASES: Case[] = [
  ...['plt', 'clt'].map((tc) => ({
    name: `demo / ${tc}`,
    modelDir: DEMO_DIR,
    tc,
    tokenizer: true,
    tokenIds: async () => (await loadTokenizer(DEMO_DIR)).encodePrompt(DEMO_PROMPT),
  })),
  ...(
    [
      ['tiny-gemma2', 'plt'],
      ['tiny-gemma2', 'clt'],
      ['tiny-llama', 'plt-skip'],
      ['tiny-gpt2', 'plt'],
      ['tiny-qwen3', 'plt-topk'],
    ] as [FixtureName, string][]
  ).map(([f, tc]) => ({
    name: `${f} / ${tc}`,
    modelDir: fixturePath(f),
    tc,
    tokenizer: false,
    tokenIds: tinyIds(f, tc),
  })),
];

/** A deterministic direction of d entries in (−1, 1). */
function direction(d: number, seed: number): Float32Array {
  const out = new Float32Array(d);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < d; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

describe.each(CASES)('attribution targets on $name', (c) => {
  it('top1 − top2 is the difference of the ordinary edges; custom targets are complete and consistent', async () => {
    const model = openModel(c.modelDir);
    const set = loadTranscoderSet(path.join(c.modelDir, 'transcoders', c.tc));
    const attributor = await Attributor.create(model, set, { cacheRoot });
    const tokenizer = c.tokenizer ? await loadTokenizer(c.modelDir) : null;
    const run: AttributionRunOptions = {
      tokenToString: tokenizer ? (id) => tokenizer.tokenToString(id) : undefined,
      targetVocabulary: targetVocabulary(model.config.vocabSize, tokenizer),
    };
    const tokenIds = await c.tokenIds();
    const base: AttributionSettings = {
      maxNLogits: 2,
      desiredLogitProb: 1,
      batchSize: 64,
      maxFeatureNodes: ALL_FEATURES,
    };
    const ordinary = await attributor.attribute(tokenIds, base, run);
    const [top1, top2] = ordinary.logitTokens.map((t) => t.tokenId);
    const name = (id: number) => (tokenizer ? tokenizer.tokenToString(id) : `<${id}>`);
    const d = model.config.hiddenSize;
    const vec = direction(d, 12345);
    const targets: AttributionTargetSpec[] = [
      { label: 'top1 vs top2', weights: { [name(top1)]: 1, [name(top2)]: -1 } },
      { label: 'random direction', vector: vec },
      { token: name(top2) },
      { label: 'weighted', weights: { [name(top2)]: 0.5 }, weight: 0.25 },
    ];
    const custom = await attributor.attribute(tokenIds, { ...base, targets }, run);
    try {
      const V = model.config.vocabSize;
      // Nodes: the given order, virtual ids for combinations and vectors, the token's own id.
      const logits = custom.graph.nodes.logits;
      expect(Array.from(logits.tokenId)).toEqual([V, V + 1, top2, V + 3]);
      expect(logits.token).toEqual(['top1 vs top2', 'random direction', name(top2), 'weighted']);
      const p1 = ordinary.logitTokens[0].prob;
      const p2 = ordinary.logitTokens[1].prob;
      expect(logits.probability[0]).toBeCloseTo(p1, 6); // Σ probabilities of the positive terms
      expect(logits.probability[1]).toBeCloseTo(1 / 4, 6); // uniform for a vector
      expect(logits.probability[2]).toBeCloseTo(p2, 6); // a token: its probability
      expect(logits.probability[3]).toBeCloseTo(0.25, 6); // the given weight
      // The feature nodes are the same (all of them), so the graphs share their source columns.
      expect(Array.from(custom.graph.nodes.features.index)).toEqual(
        Array.from(ordinary.graph.nodes.features.index),
      );

      // (a) edges into top1 − top2 = edges into top1 − edges into top2, from every source.
      const lo = nodeLayout(ordinary.graph.nodes);
      const lc = nodeLayout(custom.graph.nodes);
      expect(lc.logitOffset).toBe(lo.logitOffset);
      const rowOf = (A: Float32Array, N: number, r: number) => A.subarray(r * N, (r + 1) * N);
      const r1 = rowOf(ordinary.graph.adjacency, lo.total, lo.logitOffset);
      const r2 = rowOf(ordinary.graph.adjacency, lo.total, lo.logitOffset + 1);
      const rd = rowOf(custom.graph.adjacency, lc.total, lc.logitOffset);
      let scale = 0;
      for (let s = 0; s < lo.logitOffset; s++) scale = Math.max(scale, Math.abs(r1[s]), Math.abs(r2[s]));
      expect(scale).toBeGreaterThan(0);
      let worst = 0;
      for (let s = 0; s < lo.logitOffset; s++) worst = Math.max(worst, Math.abs(rd[s] - (r1[s] - r2[s])));
      expect(worst / scale).toBeLessThanOrEqual(1e-4);
      // The token target's row is the ordinary row of that token.
      const rt = rowOf(custom.graph.adjacency, lc.total, lc.logitOffset + 2);
      let worstToken = 0;
      for (let s = 0; s < lo.logitOffset; s++) worstToken = Math.max(worstToken, Math.abs(rt[s] - r2[s]));
      expect(worstToken / scale).toBeLessThanOrEqual(1e-5);

      // (b) completeness against the model's own forward values.
      const { cache } = custom.prepared;
      const T = cache.T;
      let mean = 0;
      for (const v of cache.logitsPreSoftcap) mean += v;
      mean /= cache.vocab;
      const demeaned = (id: number) => cache.logitsPreSoftcap[id] - mean;
      const h = cache.unembedIn.length === T * d ? cache.unembedIn.subarray((T - 1) * d) : cache.unembedIn;
      let vecValue = 0;
      for (let i = 0; i < d; i++) vecValue += vec[i] * h[i];
      const values = [demeaned(top1) - demeaned(top2), vecValue, demeaned(top2), 0.5 * demeaned(top2)];
      const refs = custom.logitTokens.map((t) => ({ kind: 'direction' as const, direction: t.direction! }));
      const constants = await frozenTargetValues(custom.prepared, refs, () => 0);
      custom.logitRows.forEach((row, k) => {
        let sum = constants[k];
        for (const v of row) sum += v;
        const rel = Math.abs(sum - values[k]) / Math.max(Math.abs(values[k]), 1e-2);
        expect(rel, `target ${k}`).toBeLessThanOrEqual(1e-4);
      });

      // (c) intervention consistency: zeroing a source moves each target by −A[t, s]. The move is
      // read from the frozen map applied to the change of its inputs (two full runs would leave
      // the float32 rounding of the values themselves, above 1e-4 of a small edge on the demo).
      const { space } = custom.prepared;
      const sample = new Set<number>();
      for (let i = 0; i < 4; i++) sample.add(Math.floor((i * space.nActive) / 4));
      sample.add(space.errorOffset + (cache.nLayers - 1) * T + T - 1); // last layer's error, last position
      sample.add(space.tokenOffset + T - 1);
      for (const col of sample) {
        const dh = await custom.prepared.runner.frozenUnembedInChange((x) => (x === col ? 0 : 1));
        let colScale = 1e-6;
        for (const row of custom.logitRows) colScale = Math.max(colScale, Math.abs(row[col]));
        custom.logitRows.forEach((row, k) => {
          const u = custom.logitTokens[k].direction!;
          let moved = 0;
          for (let i = 0; i < d; i++) moved += u[i] * dh[i];
          expect(Math.abs(moved + row[col]) / colScale, `column ${col}, target ${k}`).toBeLessThanOrEqual(
            1e-4,
          );
        });
      }
    } finally {
      await ordinary.prepared.runner.release();
      await custom.prepared.runner.release();
      await attributor.close();
      set.close();
      model.close();
    }
  });
});

describe('bad targets are typed errors naming the target', () => {
  it('rejects a multi-token string, a wrong-length vector, empty weights and more', async () => {
    const tokenizer = await loadTokenizer(DEMO_DIR);
    const config = JSON.parse(fs.readFileSync(path.join(DEMO_DIR, 'config.json'), 'utf8')) as {
      vocab_size: number;
      hidden_size: number;
    };
    const vocab = targetVocabulary(config.vocab_size, tokenizer);
    const d = config.hidden_size;
    const fail = (specs: unknown, pattern: RegExp, field: string) => {
      let err: unknown;
      try {
        resolveTargetSpecs(specs as AttributionTargetSpec[], vocab, d);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('argument');
      expect((err as EngineError).field).toBe(field);
      expect((err as Error).message).toMatch(pattern);
    };
    // A string that is two tokens.
    expect(tokenizer.encode(' Austin Dallas', { addSpecialTokens: false }).length).toBe(2);
    fail(
      [{ token: ' Austin' }, { token: ' Austin Dallas' }],
      /target 1 \(token " Austin Dallas"\).*is 2 tokens/,
      'targets[1]',
    );
    fail([{ label: 'x', weights: { ' Austin Dallas': 1 } }], /target 0 \("x"\).*2 tokens/, 'targets[0]');
    fail(
      [{ label: 'd', vector: new Float32Array(d + 1) }],
      /target 0 \("d"\).*vector has \d+ entries.*d_model is/,
      'targets[0]',
    );
    fail([{ label: 'avd', weights: {} }], /target 0 \("avd"\): "weights" is empty/, 'targets[0]');
    fail([{ label: 'z', weights: { ' Austin': 0 } }], /every coefficient is 0/, 'targets[0]');
    fail([{ token: config.vocab_size }], /not in \[0, /, 'targets[0]');
    fail([{ token: ' Austin' }, { token: ' Austin' }], /already a target/, 'targets[1]');
    fail([{ weights: { ' Austin': 1 } }], /needs a non-empty "label"/, 'targets[0]');
    fail([{ label: 'w', weights: { ' Austin': 1 }, weight: -1 }], /weight must be/, 'targets[0]');
    fail([{ label: 'two', token: ' Austin', weights: { ' Austin': 1 } }], /exactly one of/, 'targets[0]');
    fail([], /non-empty list/, 'targets');
    // And good ones resolve: a real single token, its id.
    const ok = resolveTargetSpecs([{ token: ' Austin' }], vocab, d);
    expect(ok[0].tokenId).toBe(tokenizer.encode(' Austin', { addSpecialTokens: false })[0]);
  });

  it('reach the caller of attribute() before any backward pass', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'plt'));
    const attributor = await Attributor.create(model, set, { cacheRoot });
    const tokenizer = await loadTokenizer(DEMO_DIR);
    try {
      await expect(
        attributor.attribute(
          tokenizer.encodePrompt(DEMO_PROMPT),
          {
            maxNLogits: 10,
            desiredLogitProb: 0.95,
            batchSize: 64,
            targets: [{ label: 'short', vector: new Float32Array(3) }],
          },
          { targetVocabulary: targetVocabulary(model.config.vocabSize, tokenizer) },
        ),
      ).rejects.toThrow(/target 0 \("short"\): vector has 3 entries/);
    } finally {
      await attributor.close();
      set.close();
      model.close();
    }
  });
});
