/**
 * Attribution targets through the service (in-process client, real library and engine, the
 * embedded demo model): traces.start with targets, stored with the trace, kept by re-trace,
 * strict validation; models.tokens (vocabulary search, top next tokens).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../electron/api/contract.ts';
import { type Harness, harness, nextEvent, rejection, settled } from './helpers.ts';

const DEMO = path.resolve('resources/models/gemma2-demo');
const PROMPT = 'The capital of state containing Dallas is';
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-api-targets-'));
let h: Harness;
let modelId: number;

beforeAll(async () => {
  h = harness(cacheRoot);
  const m = await h.client.call('models.register', {
    checkpointDir: DEMO,
    transcoderDir: path.join(DEMO, 'transcoders', 'plt'),
  });
  expect(m.valid).toBe(true);
  modelId = m.id;
});
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

async function toEnd(start: () => Promise<TraceRecord>): Promise<TraceRecord> {
  let id = -1;
  const end = settled(h.client, () => id);
  id = (await start()).id;
  return end;
}

describe('models.tokens', () => {
  it('searches the vocabulary and gives the top next tokens of a prompt', async () => {
    const r = await h.client.call('models.tokens', { modelId, query: 'austin', prompt: PROMPT, limit: 5 });
    expect(r.matches.length).toBeGreaterThan(0);
    expect(r.matches[0].token.trim().toLowerCase()).toBe('austin');
    expect(r.top).toHaveLength(5);
    const probs = r.top!.map((t) => t.prob);
    expect([...probs].sort((a, b) => b - a)).toEqual(probs);
    expect(probs[0]).toBeGreaterThan(0);
    expect(probs.reduce((a, b) => a + b)).toBeLessThanOrEqual(1 + 1e-6);
    const noPrompt = await h.client.call('models.tokens', { modelId, query: 'Dal' });
    expect(noPrompt.top).toBeNull();
  });
});

describe('traces.start with targets', () => {
  it('traces them, stores them with the trace, and re-trace keeps them', async () => {
    const tokens = await h.client.call('models.tokens', { modelId, prompt: PROMPT, limit: 2 });
    const [a, b] = tokens.top!;
    const targets = [
      { label: `${a.token.trim()} vs ${b.token.trim()}`, weights: { [a.token]: 1, [b.token]: -1 } },
      { token: b.token },
    ];
    const t = await toEnd(() =>
      h.client.call('traces.start', { modelId, prompt: PROMPT, settings: { targets, batchSize: 64 } }),
    );
    expect(t.status, JSON.stringify(t.error)).toBe('done');
    expect(t.settings.targets).toEqual(targets);
    const view = await h.client.call('graphs.view', { traceId: t.id });
    const logits = view.nodes.filter((n) => n.kind === 'logit');
    expect(logits.map((n) => n.token)).toEqual([targets[0].label, b.token]);
    expect(logits[1].index).toBe(b.id);
    // The combination's weight is the probability of its positive term.
    expect(logits[0].probability).toBeCloseTo(a.prob, 5);

    // An intervention on it tracks the real-token target only (the combination has a virtual id).
    const feature = view.nodes.find((n) => n.kind === 'feature')!;
    let ivId = -1;
    const ivEnd = nextEvent(
      h.client,
      'intervention.updated',
      (e) => e.intervention.id === ivId && ['done', 'failed'].includes(e.intervention.status),
    );
    ivId = (
      await h.client.call('interventions.start', {
        traceId: t.id,
        edits: [{ layer: feature.layer, feature: feature.index, position: feature.position, mode: 'ablate' }],
      })
    ).id;
    const iv = (await ivEnd).intervention;
    expect(iv.status, JSON.stringify(iv.error)).toBe('done');
    expect(iv.result?.logitChanges.map((c) => c.tokenId)).toEqual([b.id]);

    const again = await toEnd(() =>
      h.client.call('traces.retrace', { id: t.id, settings: { nodeThreshold: 0.9 } }),
    );
    expect(again.status).toBe('done');
    expect(again.settings.targets).toEqual(targets);
    const cleared = await toEnd(() =>
      h.client.call('traces.retrace', { id: t.id, settings: { targets: null } }),
    );
    expect(cleared.settings.targets).toBeNull();
    const plain = await h.client.call('graphs.view', { traceId: cleared.id });
    expect(plain.nodes.filter((n) => n.kind === 'logit')[0].index).toBe(a.id);
  });

  it('refuses malformed targets at once, naming the field', async () => {
    const bad = async (targets: unknown, pattern: RegExp, field?: string) => {
      const e = await rejection(
        h.client.call('traces.start', {
          modelId,
          prompt: PROMPT,
          settings: { targets: targets as never },
        }),
      );
      expect(e.code).toBe('invalid_params');
      expect(e.message).toMatch(pattern);
      if (field) expect(e.field).toBe(field);
    };
    await bad([{ label: 'x', weights: {} }], /target 0 \("x"\): "weights" is empty/);
    await bad([{ token: ' Austin', extra: 1 }], /unknown field "extra"/);
    await bad([], /non-empty/);
    await bad(
      [{ label: 'v', vector: [1, 2, 3] }],
      /vector has 3 numbers, the model's d_model is \d+/,
      'settings.targets[0]',
    );
  });

  it('fails a trace whose token string is not one token, naming the target', async () => {
    const t = await toEnd(() =>
      h.client.call('traces.start', {
        modelId,
        prompt: PROMPT,
        settings: { targets: [{ token: ' Austin Dallas' }] },
      }),
    );
    expect(t.status).toBe('failed');
    expect(t.error?.message).toMatch(/target 0 \(token " Austin Dallas"\).*is 2 tokens/);
  });
});
