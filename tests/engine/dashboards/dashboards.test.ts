/**
 * Feature dashboards against a brute-force computation on the tiny fixtures: top-k examples
 * with their contexts, frequency, quantiles, histogram, act_min/max and token predictions;
 * resumability (interrupt, resume, identical result) and the memory bound.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeatureAccumulator, quantileSorted } from '../../../electron/engine/dashboards/accumulator.ts';
import { cantorPair, cantorUnpair } from '../../../electron/engine/dashboards/cantor.ts';
import { type DashboardOptions, runDashboards } from '../../../electron/engine/dashboards/run.ts';
import type { FeatureRecord } from '../../../electron/engine/dashboards/types.ts';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { transcoderHookNames } from '../../../electron/engine/model/transcoder-encoder.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { FIXTURE_PROMPTS } from '../../fixtures/prompts.ts';
import { fixturePath, hash32 } from '../../fixtures/tiny-checkpoints.ts';
import { writeWordTokenizer } from '../../fixtures/word-tokenizer.ts';

const FIX = fixturePath('tiny-gemma2');
const BOS = FIXTURE_PROMPTS['tiny-gemma2'].bos;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dash-'));
const cacheRoot = path.join(tmp, 'cache');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Deterministic documents of token ids in [3, 64), lengths 1..40 (some span several windows). */
function makeDocs(n: number, seed: number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const len = 1 + (hash32(seed, i * 1000) % 40);
    return Array.from({ length: len }, (_, j) => 3 + (hash32(seed + 1, i * 1000 + j) % 61));
  });
}

function writeCorpus(name: string, docs: number[][]): string {
  const file = path.join(tmp, name);
  // blank lines and a text-free record shape are part of the format
  fs.writeFileSync(
    file,
    docs.map((d, i) => `${JSON.stringify({ token_ids: d })}${i % 7 === 3 ? '\n' : ''}`).join('\n'),
  );
  return file;
}

const W = 12;
const C = 3;
const K = 5;
const docs = makeDocs(24, 17);
let corpus: string;

async function collect(
  opts: Partial<DashboardOptions>,
  extra: Parameters<typeof runDashboards>[1] | object = {},
) {
  const records: FeatureRecord[] = [];
  const summary = await runDashboards(
    {
      model: FIX,
      transcoders: path.join(FIX, 'transcoders', 'plt'),
      corpus,
      window: W,
      context: C,
      topK: K,
      cacheRoot,
      threads: 1,
      ...opts,
    },
    { onRecord: (r) => void records.push(r), ...extra },
  );
  return { records, summary };
}

interface Hit {
  act: number;
  seq: number;
  window: number;
  pos: number;
}

/** Everything by brute force: every window through the model, every activation kept. */
async function bruteForce(tc: string) {
  const model = openModel(FIX);
  const set = loadTranscoderSet(path.join(FIX, 'transcoders', tc));
  const fp = await ForwardPass.create(model, { transcoders: set });
  try {
    const windows: number[][] = [];
    for (const d of docs)
      for (let i = 0; i < d.length; i += W - 1) windows.push([BOS, ...d.slice(i, i + W - 1)]);
    const L = set.nLayers;
    const hits: Hit[][][] = Array.from({ length: L }, (_, l) =>
      Array.from({ length: set.dTranscoderPerLayer[l] }, () => []),
    );
    const acts: Float32Array[][] = [];
    let seen = 0;
    for (const [wi, win] of windows.entries()) {
      const out = await fp.run(
        win,
        Array.from({ length: L }, (_, l) => transcoderHookNames(l).acts),
      );
      const perLayer = Array.from({ length: L }, (_, l) => out.get(transcoderHookNames(l).acts)!.data);
      acts.push(perLayer);
      seen += win.length - 1;
      for (let l = 0; l < L; l++) {
        const dT = set.dTranscoderPerLayer[l];
        for (let p = 1; p < win.length; p++) {
          for (let f = 0; f < dT; f++) {
            const a = perLayer[l][p * dT + f];
            if (a > 0) hits[l][f].push({ act: a, seq: wi * W + p, window: wi, pos: p });
          }
        }
      }
    }
    const wu = model.tensors.readFloat32(model.weightNames.lmHead ?? model.weightNames.embed);
    const V = model.config.vocabSize;
    const d = set.dModel;
    const logits = (l: number, f: number) => {
      const row = set.decoderRowsFloat32(l, [f]);
      const slots = set.kind === 'clt' ? L - l : 1;
      const dir = row.subarray((slots - 1) * d, slots * d);
      return Array.from({ length: V }, (_, v) => {
        let s = 0;
        for (let k = 0; k < d; k++) s += dir[k] * wu[v * d + k];
        return s;
      });
    };
    return { windows, hits, acts, seen, logits, dT: set.dTranscoderPerLayer };
  } finally {
    await fp.close();
    set.close();
    model.close();
  }
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-6, Math.abs(b));

beforeAll(() => {
  corpus = writeCorpus('corpus.jsonl', docs);
});

describe('feature dashboards', () => {
  it('match a brute-force computation: top-k contexts, frequency, quantiles, histogram, token predictions', async () => {
    const { records, summary } = await collect({ reservoir: 4096, histogramBins: 8 });
    const bf = await bruteForce('plt');
    expect(summary.windows).toBe(bf.windows.length);
    expect(summary.tokensSeen).toBe(bf.seen);
    expect(summary.tokens).toBe(bf.windows.reduce((n, w) => n + w.length, 0));
    expect(records.length).toBe(bf.dT.reduce((a, b) => a + b, 0));
    let checkedExamples = 0;
    for (const r of records) {
      const hits = bf.hits[r.layer][r.index];
      expect(r.feature).toBe(cantorPair(r.layer, r.index));
      expect(r.activation_frequency).toBe(hits.length / bf.seen);
      expect(r.activation_count).toBe(hits.length);
      // top-k: activation descending, earliest first among equals
      const top = [...hits].sort((a, b) => b.act - a.act || a.seq - b.seq).slice(0, K);
      const ex = r.examples_quantiles[0].examples;
      expect(r.examples_quantiles[0].quantile_name).toBe('Top activations');
      expect(ex.length).toBe(top.length);
      top.forEach((h, i) => {
        const win = bf.windows[h.window];
        const start = Math.max(0, h.pos - C);
        const end = Math.min(win.length - 1, h.pos + C);
        expect(ex[i].token_ids).toEqual(win.slice(start, end + 1));
        expect(ex[i].tokens).toEqual(win.slice(start, end + 1).map((t) => `<${t}>`));
        expect(ex[i].train_token_ind).toBe(h.pos - start);
        const dT = bf.dT[r.layer];
        ex[i].tokens_acts_list.forEach((a, j) => {
          expect(rel(a, bf.acts[h.window][r.layer][(start + j) * dT + r.index])).toBeLessThan(1e-6);
        });
        expect(ex[i].tokens_acts_list[ex[i].train_token_ind]).toBeCloseTo(h.act, 5);
        checkedExamples++;
      });
      // distribution
      const sorted = hits.map((h) => h.act).sort((a, b) => a - b);
      if (hits.length) {
        expect(rel(r.act_max, sorted[sorted.length - 1])).toBeLessThan(1e-6);
        expect(r.act_min).toBe(hits.length < bf.seen ? 0 : sorted[0]);
        for (const q of r.quantile_values)
          expect(rel(q.value, quantileSorted(sorted, q.quantile))).toBeLessThan(1e-6);
        expect(r.histogram!.exact).toBe(true);
        expect(r.histogram!.counts.reduce((a, b) => a + b, 0)).toBe(hits.length);
        const max = sorted[sorted.length - 1];
        const counts = new Array(8).fill(0);
        for (const v of sorted) counts[Math.min(7, Math.floor((v / max) * 8))]++;
        expect(r.histogram!.counts).toEqual(counts);
      } else {
        expect(r.act_max).toBe(0);
        expect(r.histogram).toBeNull();
        expect(ex).toEqual([]);
      }
      // token predictions: W_dec[f]·W_Uᵀ
      const lg = bf.logits(r.layer, r.index);
      const desc = [...lg].sort((a, b) => b - a);
      const asc = [...lg].sort((a, b) => a - b);
      expect(r.top_logit_ids).toHaveLength(10);
      r.top_logit_ids!.forEach((id, i) => {
        expect(Math.abs(lg[id] - desc[i])).toBeLessThan(1e-4);
        expect(Math.abs(r.top_logit_values![i] - lg[id])).toBeLessThan(1e-4);
      });
      r.bottom_logit_ids!.forEach((id, i) => {
        expect(Math.abs(lg[id] - asc[i])).toBeLessThan(1e-4);
      });
      expect(r.top_logits).toEqual(r.top_logit_ids!.map((t) => `<${t}>`));
    }
    expect(checkedExamples).toBeGreaterThan(200);
  });

  it('use the decoder slot of the last written layer for a CLT', async () => {
    const { records } = await collect({ transcoders: path.join(FIX, 'transcoders', 'clt'), maxTokens: 30 });
    const bf = await bruteForce('clt');
    for (const r of records.filter((_, i) => i % 7 === 0)) {
      const lg = bf.logits(r.layer, r.index);
      const desc = [...lg].sort((a, b) => b - a);
      r.top_logit_ids!.forEach((id, i) => {
        expect(Math.abs(lg[id] - desc[i])).toBeLessThan(1e-4);
      });
    }
  });

  it('stop at --max-tokens exactly', async () => {
    const { summary } = await collect({ maxTokens: 50, layers: [1] });
    expect(summary.tokens).toBe(50);
    expect(summary.layers).toEqual([1]);
    expect(summary.features).toBe(48);
  });

  it('resume after an interruption with a result identical to an uninterrupted run', async () => {
    // a tiny reservoir so the sampler (and its RNG state) matters
    const settings = { reservoir: 3, histogramBins: 4 };
    const full = await collect(settings);
    const ckpt = path.join(tmp, 'resume.checkpoint');
    const half = Math.floor(full.summary.windows / 2);
    const controller = new AbortController();
    await expect(
      collect(
        { ...settings, checkpoint: ckpt, checkpointEvery: 4 },
        {
          signal: controller.signal,
          onWindow: (n: number) => {
            if (n === half) controller.abort();
          },
        },
      ),
    ).rejects.toMatchObject({ code: 'cancelled' });
    expect(fs.existsSync(ckpt)).toBe(true);
    const resumed = await collect({ ...settings, checkpoint: ckpt, checkpointEvery: 4 });
    expect(resumed.summary.resumedFromWindow).toBe(half);
    expect(resumed.summary.windows).toBe(full.summary.windows);
    expect(resumed.records).toEqual(full.records);
    expect(fs.existsSync(ckpt)).toBe(false);
    // a checkpoint made with other settings is refused, not silently mixed
    const c2 = new AbortController();
    await expect(
      collect({ ...settings, checkpoint: ckpt }, { signal: c2.signal, onWindow: () => c2.abort() }),
    ).rejects.toMatchObject({ code: 'cancelled' });
    await expect(collect({ ...settings, checkpoint: ckpt, topK: 3 })).rejects.toMatchObject({
      code: 'mismatch',
    });
    const fresh = await collect({ ...settings, checkpoint: ckpt, topK: 3, resume: false });
    expect(fresh.summary.resumedFromWindow).toBeNull();
  });

  it('keep the accumulator the same size whatever the corpus length', async () => {
    const small = await collect({ maxTokens: 40 });
    const big = await collect({});
    expect(big.summary.tokens).toBeGreaterThan(10 * small.summary.tokens);
    expect(big.summary.accumulatorBytes).toBe(small.summary.accumulatorBytes);
    // and directly: a thousand windows of dense random activations allocate nothing new
    const acc = new FeatureAccumulator({
      layers: [0],
      dTranscoder: [16],
      topK: 4,
      context: 2,
      reservoir: 8,
      windowSize: 8,
    });
    const bytes = acc.byteSize;
    const buffers = Object.values(acc.arrays).map((a) => a.buffer);
    for (let w = 0; w < 1000; w++) {
      const acts = Float32Array.from({ length: 8 * 16 }, (_, i) =>
        hash32(w, i) % 5 === 0 ? hash32(w + 1, i) / 2 ** 32 : 0,
      );
      acc.observeWindow(w, [BOS, 1, 2, 3, 4, 5, 6, 7], [acts]);
    }
    expect(acc.byteSize).toBe(bytes);
    expect(Object.values(acc.arrays).map((a) => a.buffer)).toEqual(buffers);
    expect(acc.tokensSeen).toBe(7000);
  });

  it('tokenize a text corpus (paragraphs) with the tokenizer of the model folder', async () => {
    // the fixture plus a word-level tokenizer whose ids fit its 64-token vocabulary
    const dir = path.join(tmp, 'with-tokenizer');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'transcoders']) {
      if (!fs.existsSync(path.join(dir, f))) fs.symlinkSync(path.join(FIX, f), path.join(dir, f));
    }
    const words = [
      '<pad>',
      '<eos>',
      '<bos>',
      '<unk>',
      'the',
      'cat',
      'sat',
      'on',
      'mat',
      'a',
      'dog',
      'ran',
      'far',
    ];
    writeWordTokenizer(dir, words.slice(4));
    const text = path.join(tmp, 'corpus.txt');
    fs.writeFileSync(text, 'the cat sat\non the mat\n\na dog ran far\n\n\nthe dog sat on a cat\n');
    const { records, summary } = await collect({ model: dir, corpus: text, split: 'paragraph', context: 2 });
    // paragraphs: 6, 4 and 6 words → windows of ≤ 11 tokens after BOS
    expect(summary.windows).toBe(3);
    expect(summary.tokensSeen).toBe(16);
    const examples = records.flatMap((r) => r.examples_quantiles[0].examples);
    expect(examples.length).toBeGreaterThan(0);
    for (const e of examples) {
      expect(e.tokens).toEqual(e.token_ids!.map((t) => words[t]));
      expect(e.tokens.slice(1)).not.toContain('<bos>');
    }
    expect(examples.some((e) => e.tokens[0] === '<bos>')).toBe(true);
    expect(records[0].top_logits.every((t) => typeof t === 'string')).toBe(true);
  });

  it('cantor pairing round-trips', () => {
    for (const [l, f] of [
      [0, 0],
      [3, 1207],
      [25, 16383],
      [17, 0],
    ]) {
      expect(cantorUnpair(cantorPair(l, f))).toEqual({ layer: l, index: f });
    }
    expect(cantorPair(3, 1207)).toBe(((3 + 1207) * (3 + 1208)) / 2 + 1207);
  });
});
