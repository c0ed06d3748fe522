/**
 * The Tracer on the tiny Gemma-2 fixture: a prompt and its token ids give the same graph, a
 * Tracer traces again identically, the one tokenizer rule (no tokenizer.json: token ids only;
 * a broken one: open fails), settings checked before any compute, cancel, and reuse by `matches`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_FEATURE_NODES,
  DEFAULT_TRACE_SETTINGS,
  type TraceSettings,
} from '../../../electron/engine/attribution/defaults.ts';
import { type TraceInput, type TraceResult, Tracer } from '../../../electron/engine/attribution/tracer.ts';
import { FIXTURE_PROMPTS } from '../../fixtures/prompts.ts';
import { fixturePath } from '../../fixtures/tiny-checkpoints.ts';
import { writeWordTokenizer } from '../../fixtures/word-tokenizer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-tracer-'));
const bare = fixturePath('tiny-gemma2'); // no tokenizer.json
const withTokenizer = path.join(tmp, 'with-tokenizer');
const broken = path.join(tmp, 'broken-tokenizer');
const transcoders = (model: string) => path.join(model, 'transcoders', 'plt');
const opts = { provider: 'cpu' as const, cacheRoot: path.join(tmp, 'cache') };
const settings = { ...DEFAULT_TRACE_SETTINGS, batchSize: 16, maxFeatureNodes: null };

beforeAll(() => {
  fs.cpSync(bare, withTokenizer, { recursive: true });
  writeWordTokenizer(withTokenizer, 64);
  fs.cpSync(bare, broken, { recursive: true });
  fs.writeFileSync(path.join(broken, 'tokenizer.json'), '{"model": ');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Everything a trace decides, exactly (timings aside). */
function graphOf(t: TraceResult) {
  const f = t.raw.nodes.features;
  return {
    tokenIds: t.tokenIds,
    features: [f.layer, f.position, f.index, f.activation].map((a) => Array.from(a)),
    logits: t.logitTokens.map((l) => [l.tokenId, l.prob]),
    adjacency: Array.from(t.raw.adjacency),
    kept: Array.from(t.pruned.keptNodes),
    edges: Array.from(t.pruned.edges.weight),
    settings: t.settings,
  };
}

describe('Tracer', () => {
  it('gives the same graph for a prompt and its token ids, and again on the same Tracer', async () => {
    const tracer = await Tracer.open(withTokenizer, transcoders(withTokenizer), opts);
    try {
      const phases: string[] = [];
      const first = await tracer.trace({ prompt: 'w5 w9 w17 w33 w8' }, settings, {
        onProgress: (p) => {
          if (phases.at(-1) !== p.phase) phases.push(p.phase);
        },
      });
      // The word tokenizer: <bos> is id 2, "wN" is id N.
      expect(first.tokenIds).toEqual([2, 5, 9, 17, 33, 8]);
      expect(phases[0]).toBe('forward');
      expect(phases.at(-1)).toBe('prune');
      expect(first.settings.maxFeatureNodes).toBe(DEFAULT_MAX_FEATURE_NODES);
      expect(first.settings.provider).toBe('cpu');
      expect(first.activeFeatures).toBeGreaterThan(0);
      expect(Object.keys(first.timingsMs)).toEqual([
        'compile_and_load',
        'forward',
        'setup',
        'logits',
        'features',
        'assemble',
        'prune',
      ]);
      const second = await tracer.trace({ tokenIds: [2, 5, 9, 17, 33, 8] }, settings);
      expect(graphOf(second)).toEqual(graphOf(first));
      expect(second.timingsMs.compile_and_load).toBeUndefined(); // loading happened once
      const third = await tracer.trace({ prompt: 'w5 w9 w17 w33 w8' }, settings);
      expect(graphOf(third)).toEqual(graphOf(first));
      // A different prompt on the same Tracer gives its own graph.
      const other = await tracer.trace({ prompt: 'w40 w41 w3' }, settings);
      expect(other.tokenIds).toEqual([2, 40, 41, 3]);
      expect(other.raw.adjacency.length).not.toBe(first.raw.adjacency.length);
    } finally {
      await tracer.close();
    }
  });

  it('takes token ids without tokenizer.json; a prompt then fails naming the missing file', async () => {
    const tracer = await Tracer.open(bare, transcoders(bare), opts);
    try {
      expect(tracer.tokenizer).toBeNull();
      const ids = FIXTURE_PROMPTS['tiny-gemma2'].cases[0];
      const t = await tracer.trace({ tokenIds: ids }, settings);
      expect(t.tokenIds).toEqual(ids);
      expect(tracer.tokenToString(ids[1])).toBe(`<${ids[1]}>`);
      await expect(tracer.trace({ prompt: 'w5 w9' }, settings)).rejects.toMatchObject({
        code: 'tokenizer',
        file: path.join(bare, 'tokenizer.json'),
        message: expect.stringContaining(path.join(bare, 'tokenizer.json')),
      });
    } finally {
      await tracer.close();
    }
  });

  it('fails open on a tokenizer.json that is there but broken, naming it', async () => {
    await expect(Tracer.open(broken, transcoders(broken), opts)).rejects.toMatchObject({
      code: 'tokenizer',
      file: path.join(broken, 'tokenizer.json'),
    });
  });

  it('checks the input and the settings before the forward pass', async () => {
    const tracer = await Tracer.open(bare, transcoders(bare), opts);
    try {
      const ids = FIXTURE_PROMPTS['tiny-gemma2'].cases[0];
      const phases: string[] = [];
      const onProgress = (p: { phase: string }) => phases.push(p.phase);
      const cases: [TraceInput, TraceSettings, string][] = [
        [{ tokenIds: [ids[0]] }, settings, 'prompt'],
        [{ tokenIds: [ids[0], 1e6] }, settings, 'token_ids'],
        [{ tokenIds: ids }, { ...settings, nodeThreshold: 1.5 }, 'nodeThreshold'],
        [{ tokenIds: ids }, { ...settings, batchSize: 0 }, 'batch_size'],
        [{ tokenIds: ids }, { ...settings, targets: [{ token: 'w5' }] }, 'targets[0]'],
      ];
      for (const [input, s, field] of cases) {
        await expect(tracer.trace(input, s, { onProgress }), JSON.stringify(s)).rejects.toMatchObject({
          code: 'argument',
          field,
        });
      }
      expect(phases).toEqual([]);
    } finally {
      await tracer.close();
    }
  });

  it('ends with a cancelled error when the signal is aborted mid-trace, and traces again after', async () => {
    const tracer = await Tracer.open(bare, transcoders(bare), opts);
    try {
      const ids = FIXTURE_PROMPTS['tiny-gemma2'].cases[0];
      const controller = new AbortController();
      const seen: string[] = [];
      // One feature row per batch: the features phase has many cancellation points.
      const run = tracer.trace(
        { tokenIds: ids },
        { ...settings, batchSize: 1 },
        {
          signal: controller.signal,
          onProgress: (p) => {
            seen.push(p.phase);
            if (p.phase === 'features' && p.done >= 1) controller.abort();
          },
        },
      );
      await expect(run).rejects.toMatchObject({ code: 'cancelled' });
      expect(seen).not.toContain('prune');
      const again = await tracer.trace({ tokenIds: ids }, settings);
      expect(again.pruned.keptNodes.length).toBeGreaterThan(0);
    } finally {
      await tracer.close();
    }
  });

  it('is reused by reuseOrOpen only for the same folders and options', async () => {
    const a = await Tracer.reuseOrOpen(null, bare, transcoders(bare), opts);
    expect(a.matches(`${bare}/`, transcoders(bare), opts)).toBe(true);
    expect(a.matches(bare, transcoders(bare), { ...opts, threads: 1 })).toBe(false);
    const same = await Tracer.reuseOrOpen(a, bare, transcoders(bare), opts);
    expect(same).toBe(a);
    const other = await Tracer.reuseOrOpen(a, bare, path.join(bare, 'transcoders', 'clt'), opts);
    try {
      expect(other).not.toBe(a);
      expect(other.set.kind).toBe('clt');
    } finally {
      await other.close();
    }
  });
});
