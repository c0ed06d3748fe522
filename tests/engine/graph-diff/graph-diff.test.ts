/**
 * Graph diff: alignment of prompts, exact results on a hand-built pair, the empty diff of a
 * graph with itself, the typed mismatch error, and a real pair of demo traces (Dallas → Austin
 * against Oakland → Sacramento) whose diff is non-empty and symmetric.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attributor, DEFAULT_ATTRIBUTION_SETTINGS } from '../../../electron/engine/attribution/attribute.ts';
import { EngineError } from '../../../electron/engine/errors.ts';
import {
  alignPrompts,
  type DiffGraph,
  type DiffGraphNode,
  diffGraphFromDocument,
  diffGraphs,
  type GraphDiff,
  GraphDiffMismatchError,
  isEmptyDiff,
  logitKeyOf,
  logitText,
} from '../../../electron/engine/graph-diff/index.ts';
import { buildGraphDocument, stringifyGraphDocument } from '../../../electron/engine/graph-json/export.ts';
import { importGraphJson } from '../../../electron/engine/graph-json/import.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { pruneGraph } from '../../../electron/engine/pruning/index.ts';
import { loadTokenizer } from '../../../electron/engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';

describe('prompt alignment', () => {
  it('identical prompts match position by position', () => {
    const al = alignPrompts(['<bos>', 'a', 'b'], ['<bos>', 'a', 'b']);
    expect(al.method).toBe('identical');
    expect(al.columns).toEqual([
      { a: 0, b: 0 },
      { a: 1, b: 1 },
      { a: 2, b: 2 },
    ]);
    expect(al.substitutions).toEqual([]);
  });

  it('same length: positions match and differing tokens are substitutions', () => {
    const al = alignPrompts(['<bos>', 'in', ' Dallas', ' is'], ['<bos>', 'in', ' Oakland', ' is']);
    expect(al.method).toBe('substitution');
    expect([...al.columnOfB]).toEqual([0, 1, 2, 3]);
    expect(al.substitutions).toEqual([
      { position_a: 2, position_b: 2, token_a: ' Dallas', token_b: ' Oakland' },
    ]);
  });

  it('other lengths: along the longest common subsequence; equal gaps pair as substitutions', () => {
    // B inserts " big" and replaces " Dallas" by " Oakland".
    const a = ['<bos>', 'the', ' city', ' Dallas', ' is'];
    const b = ['<bos>', 'the', ' big', ' city', ' Oakland', ' is'];
    const al = alignPrompts(a, b);
    expect(al.method).toBe('lcs');
    expect(al.columns).toEqual([
      { a: 0, b: 0 },
      { a: 1, b: 1 },
      { a: null, b: 2 },
      { a: 2, b: 3 },
      { a: 3, b: 4 },
      { a: 4, b: 5 },
    ]);
    expect(al.substitutions).toEqual([
      { position_a: 3, position_b: 4, token_a: ' Dallas', token_b: ' Oakland' },
    ]);
    // Unequal gaps stay unmatched on both sides.
    const al2 = alignPrompts(['x', 'p', 'q', 'y'], ['x', 'r', 'y']);
    expect(al2.columns).toEqual([
      { a: 0, b: 0 },
      { a: 1, b: null },
      { a: 2, b: null },
      { a: null, b: 1 },
      { a: 3, b: 2 },
    ]);
  });
});

// ---- a hand-built pair

const feature = (
  layer: number,
  index: number,
  position: number,
  activation: number,
  influence: number,
): DiffGraphNode => ({
  id: `${layer}_${index}_${position}`,
  kind: 'feature',
  layer,
  index,
  position,
  activation,
  influence,
  probability: null,
  label: '',
});
const error = (layer: number, position: number, influence: number): DiffGraphNode => ({
  id: `${layer}_-1_${position}`,
  kind: 'error',
  layer,
  index: -1,
  position,
  activation: null,
  influence,
  probability: null,
  label: '',
});
const token = (tokenId: number, position: number, text: string, influence: number): DiffGraphNode => ({
  id: `E_${tokenId}_${position}`,
  kind: 'token',
  layer: -1,
  index: tokenId,
  position,
  activation: null,
  influence,
  probability: null,
  label: text,
});
const logit = (tokenId: number, position: number, text: string, p: number): DiffGraphNode => ({
  id: `3_${tokenId}_${position}`,
  kind: 'logit',
  layer: 3,
  index: tokenId,
  position,
  activation: null,
  influence: null,
  probability: p,
  label: text,
  logitKey: `token:${tokenId}`,
});

function graph(
  name: string,
  tokens: string[],
  nodes: DiffGraphNode[],
  links: Array<[string, string, number]>,
): DiffGraph {
  const at = new Map(nodes.map((n, i) => [n.id, i]));
  return {
    name,
    identity: { 'metadata.scan': '"tiny"', 'metadata.transcoder_list': '["clt"]' },
    promptTokens: tokens,
    nodes,
    edges: {
      source: links.map(([s]) => at.get(s) as number),
      target: links.map(([, t]) => at.get(t) as number),
      weight: links.map(([, , w]) => w),
    },
  };
}

const A = graph(
  'A',
  ['<bos>', 'x', ' Dallas'],
  [
    token(2, 0, '<bos>', 0.9),
    token(10, 1, 'x', 0.5),
    token(20, 2, ' Dallas', 0.3),
    feature(0, 5, 2, 2.0, 0.2), // in both, activation 2 → 3
    feature(1, 7, 2, 1.0, 0.4), // only in A
    feature(0, 9, 1, 0.5, 0.6), // in both, unchanged
    error(1, 2, 0.7), // in both, influence 0.7 → 0.5
    logit(100, 2, ' Austin', 0.8), // only in A
    logit(200, 2, ' the', 0.1), // in both, p 0.1 → 0.05
  ],
  [
    ['E_20_2', '0_5_2', 1.5], // changed → 2.5
    ['0_5_2', '1_7_2', 0.7], // only A (target only in A)
    ['1_7_2', '3_100_2', 0.9], // only A
    ['0_9_1', '0_5_2', 0.25], // unchanged
    ['E_10_1', '0_9_1', 0.3], // unchanged
    ['1_-1_2', '3_200_2', -0.2], // changed → -0.6
  ],
);
const B = graph(
  'B',
  ['<bos>', 'x', ' Oakland'],
  [
    token(2, 0, '<bos>', 0.9),
    token(10, 1, 'x', 0.5),
    token(30, 2, ' Oakland', 0.3),
    feature(0, 5, 2, 3.0, 0.2),
    feature(0, 9, 1, 0.5, 0.6),
    feature(2, 4, 2, 1.2, 0.3), // only in B
    error(1, 2, 0.5),
    logit(300, 2, ' Sacramento', 0.7), // only in B
    logit(200, 2, ' the', 0.05),
  ],
  [
    ['E_30_2', '0_5_2', 2.5],
    ['0_9_1', '0_5_2', 0.25],
    ['E_10_1', '0_9_1', 0.3],
    ['1_-1_2', '3_200_2', -0.6],
    ['0_5_2', '2_4_2', 1.1], // only B
    ['2_4_2', '3_300_2', 0.8], // only B
    ['E_2_0', '2_4_2', 0.05], // only B
  ],
);

describe('diffGraphs on a hand-built pair', () => {
  it('reports exactly the differences built in', () => {
    const d = diffGraphs(A, B);
    expect(d.alignment.method).toBe('substitution');
    expect(d.alignment.substitutions).toEqual([
      { position_a: 2, position_b: 2, token_a: ' Dallas', token_b: ' Oakland' },
    ]);
    // Only in A: the logit first (by probability), then by influence share.
    expect(d.nodes.only_a.map((n) => n.id)).toEqual(['3_100_2', '1_7_2']);
    expect(d.nodes.only_b.map((n) => n.id)).toEqual(['3_300_2', '2_4_2']);
    expect(d.nodes.only_b[1]).toMatchObject({
      kind: 'feature',
      layer: 2,
      index: 4,
      position: 2,
      activation: 1.2,
    });
    expect(d.nodes.changed.map((c) => [c.kind, c.id_a, c.id_b, c.change])).toEqual([
      ['feature', '0_5_2', '0_5_2', 1], // activation 2 → 3
      ['error', '1_-1_2', '1_-1_2', expect.closeTo(0.2, 12)], // influence 0.7 → 0.5: more important
      ['logit', '3_200_2', '3_200_2', expect.closeTo(-0.05, 12)],
      ['token', 'E_20_2', 'E_30_2', 0], // the substituted token
    ]);
    expect(d.nodes.changed[0]).toMatchObject({
      activation_a: 2,
      activation_b: 3,
      influence_a: 0.2,
      influence_b: 0.2,
    });
    expect(d.nodes.changed[2]).toMatchObject({ token_prob_a: 0.1, token_prob_b: 0.05, label_a: ' the' });
    expect(d.nodes.changed[3]).toMatchObject({ label_a: ' Dallas', label_b: ' Oakland' });
    expect(d.nodes.totals).toEqual({ only_a: 2, only_b: 2, changed: 4, unchanged: 3 });
    expect(d.edges.only_a).toBe(2);
    expect(d.edges.only_b).toBe(3);
    expect(d.edges.changed).toEqual([
      {
        source_a: 'E_20_2',
        target_a: '0_5_2',
        source_b: 'E_30_2',
        target_b: '0_5_2',
        weight_a: 1.5,
        weight_b: 2.5,
        delta: 1,
      },
      {
        source_a: '1_-1_2',
        target_a: '3_200_2',
        source_b: '1_-1_2',
        target_b: '3_200_2',
        weight_a: -0.2,
        weight_b: -0.6,
        delta: expect.closeTo(-0.4, 12),
      },
    ]);
    expect(d.edges.totals).toEqual({ changed: 2, unchanged: 2 });
    expect(isEmptyDiff(d)).toBe(false);
  });

  it('--top limits the lists, not the totals', () => {
    const d = diffGraphs(A, B, { top: 1 });
    expect(d.nodes.only_a.map((n) => n.id)).toEqual(['3_100_2']);
    expect(d.nodes.changed).toHaveLength(1);
    expect(d.edges.changed).toHaveLength(1);
    expect(d.nodes.totals.changed).toBe(4);
    expect(() => diffGraphs(A, B, { top: -1 })).toThrow(/top must be a non-negative integer/);
  });

  it('the merged graph holds every node and edge of both, with its status', () => {
    const d = diffGraphs(A, B, { merged: true });
    const m = d.merged!;
    expect(m.nodes).toHaveLength(9 + 9 - 7); // 7 nodes matched
    const status = Object.fromEntries(m.nodes.map((n) => [n.a?.id ?? n.b?.id, n.status]));
    expect(status).toMatchObject({
      '0_5_2': 'up',
      '1_7_2': 'only_a',
      '2_4_2': 'only_b',
      '0_9_1': 'same',
      '1_-1_2': 'up',
      '3_200_2': 'down',
      '3_100_2': 'only_a',
      '3_300_2': 'only_b',
    });
    expect(m.edges).toHaveLength(2 + 3 + 2 + 2);
    for (const e of m.edges) expect(m.nodes[e.source] && m.nodes[e.target]).toBeTruthy();
  });

  it('a graph diffed with itself is empty', () => {
    for (const g of [A, B]) {
      const d = diffGraphs(g, g);
      expect(isEmptyDiff(d)).toBe(true);
      expect(d.nodes.only_a).toEqual([]);
      expect(d.nodes.changed).toEqual([]);
      expect(d.edges).toMatchObject({ only_a: 0, only_b: 0, changed: [] });
      expect(d.nodes.totals.unchanged).toBe(g.nodes.length);
    }
  });

  it('logits match by token text or target label, not by (virtual) id', () => {
    expect(logitText('Output " Austin" (p=0.985)')).toBe(' Austin');
    expect(logitText('Austin vs Dallas')).toBe('Austin vs Dallas');
    const target = (id: number, p: number): DiffGraphNode => ({
      ...logit(id, 2, 'Austin vs Dallas', p),
      logitKey: logitKeyOf('Austin vs Dallas'),
    });
    const x = graph(
      'X',
      ['a', 'b', 'c'],
      [target(1000, 0.5), token(1, 2, 'c', 0.1)],
      [['E_1_2', '3_1000_2', 1]],
    );
    const y = graph(
      'Y',
      ['a', 'b', 'c'],
      [token(1, 2, 'c', 0.1), target(1001, 0.25)],
      [['E_1_2', '3_1001_2', 1]],
    );
    const d = diffGraphs(x, y);
    expect(d.nodes.totals).toMatchObject({ only_a: 0, only_b: 0, changed: 1 });
    expect(d.nodes.changed[0]).toMatchObject({ id_a: '3_1000_2', id_b: '3_1001_2', change: -0.25 });
    expect(d.edges).toMatchObject({ only_a: 0, only_b: 0, changed: [] });
  });

  it('graphs of other models or transcoder sets are a typed error naming the field', () => {
    const other = { ...B, identity: { ...B.identity, 'metadata.transcoder_list': '["plt"]' } };
    let err: unknown;
    try {
      diffGraphs(A, other);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GraphDiffMismatchError);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('mismatch');
    expect((err as EngineError).field).toBe('metadata.transcoder_list');
    expect((err as Error).message).toMatch(/\["clt"\] in A but \["plt"\] in B/);
  });
});

// ---- two real traces of the demo model

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-diff-cache-'));
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

/** Traces a prompt on the demo model (CLT set) and returns it as graph JSON text. */
async function traceDemo(prompt: string): Promise<string> {
  const model = openModel(DEMO_DIR);
  const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
  const attributor = await Attributor.create(model, set, { cacheRoot });
  try {
    const tokenizer = await loadTokenizer(model.dir);
    const result = await attributor.attribute(tokenizer.encodePrompt(prompt), DEFAULT_ATTRIBUTION_SETTINGS, {
      tokenToString: (id) => tokenizer.tokenToString(id),
    });
    const pruned = pruneGraph(result.graph, { nodeThreshold: 0.8, edgeThreshold: 0.98 });
    await result.prepared.runner.release();
    const doc = buildGraphDocument({
      raw: result.graph,
      pruned,
      metadata: {
        slug: 'demo',
        scan: 'gemma2-demo',
        prompt,
        transcoderList: [set.dir],
        modelId: 'gemma2-demo',
      },
    });
    return stringifyGraphDocument(doc);
  } finally {
    await attributor.close();
    set.close();
    model.close();
  }
}

/** diff(B, A) with its sides swapped back, to compare with diff(A, B). */
function mirrored(d: GraphDiff) {
  return {
    only_a: d.nodes.only_b,
    only_b: d.nodes.only_a,
    changed: d.nodes.changed.map((c) => ({
      id_a: c.id_b,
      id_b: c.id_a,
      activation_a: c.activation_b,
      activation_b: c.activation_a,
      influence_a: c.influence_b,
      influence_b: c.influence_a,
      token_prob_a: c.token_prob_b,
      token_prob_b: c.token_prob_a,
      change: -c.change,
    })),
    edges: {
      only_a: d.edges.only_b,
      only_b: d.edges.only_a,
      changed: d.edges.changed.map((e) => ({
        source_a: e.source_b,
        target_a: e.target_b,
        source_b: e.source_a,
        target_b: e.target_a,
        weight_a: e.weight_b,
        weight_b: e.weight_a,
        delta: -e.delta,
      })),
    },
  };
}

describe.skipIf(!fs.existsSync(path.join(DEMO_DIR, 'model.safetensors')))('diff of two demo traces', () => {
  let dallas: DiffGraph;
  let oakland: DiffGraph;
  let dallasText: string;
  beforeAll(async () => {
    dallasText = await traceDemo('The capital of state containing Dallas is');
    const oaklandText = await traceDemo('The capital of state containing Oakland is');
    dallas = diffGraphFromDocument(importGraphJson(dallasText, { file: 'dallas.json' }), 'dallas.json');
    oakland = diffGraphFromDocument(importGraphJson(oaklandText, { file: 'oakland.json' }), 'oakland.json');
  }, 120_000);

  it('Dallas → Austin against Oakland → Sacramento: non-empty, the answer logits swap', () => {
    const d = diffGraphs(dallas, oakland);
    expect(isEmptyDiff(d)).toBe(false);
    expect(d.alignment.substitutions).toEqual([
      { position_a: 6, position_b: 6, token_a: ' Dallas', token_b: ' Oakland' },
    ]);
    expect(d.nodes.only_a.find((n) => n.kind === 'logit')?.label).toBe(' Austin');
    expect(d.nodes.only_b.find((n) => n.kind === 'logit')?.label).toBe(' Sacramento');
    expect(d.nodes.changed.length).toBeGreaterThan(0);
    expect(d.edges.changed.length).toBeGreaterThan(0);
    // Sorted by size.
    for (let i = 1; i < d.nodes.changed.length; i++)
      expect(Math.abs(d.nodes.changed[i - 1].change)).toBeGreaterThanOrEqual(
        Math.abs(d.nodes.changed[i].change),
      );
    for (let i = 1; i < d.edges.changed.length; i++)
      expect(Math.abs(d.edges.changed[i - 1].delta)).toBeGreaterThanOrEqual(
        Math.abs(d.edges.changed[i].delta),
      );
    // Nothing before the substituted position changes activation (the model is causal).
    for (const c of d.nodes.changed)
      if (c.kind === 'feature' && c.position_a < 6) expect(c.activation_b).toBe(c.activation_a);
    // Every node is in exactly one of the lists or unchanged.
    const t = d.nodes.totals;
    expect(t.only_a + t.changed + t.unchanged).toBe(dallas.nodes.length);
    expect(t.only_b + t.changed + t.unchanged).toBe(oakland.nodes.length);
    expect(d.edges.only_a + d.edges.totals.changed + d.edges.totals.unchanged).toBe(
      dallas.edges.weight.length,
    );
  });

  it('is symmetric: diff(B, A) mirrors diff(A, B)', () => {
    const ab = diffGraphs(dallas, oakland);
    const ba = mirrored(diffGraphs(oakland, dallas));
    expect(ba.only_a).toEqual(ab.nodes.only_a);
    expect(ba.only_b).toEqual(ab.nodes.only_b);
    expect(ba.changed).toEqual(
      ab.nodes.changed.map((c) => ({
        id_a: c.id_a,
        id_b: c.id_b,
        activation_a: c.activation_a,
        activation_b: c.activation_b,
        influence_a: c.influence_a,
        influence_b: c.influence_b,
        token_prob_a: c.token_prob_a,
        token_prob_b: c.token_prob_b,
        change: c.change,
      })),
    );
    expect(ba.edges).toEqual({ only_a: ab.edges.only_a, only_b: ab.edges.only_b, changed: ab.edges.changed });
  });

  it('a real graph diffed with itself (and with its own re-import) is empty', () => {
    expect(isEmptyDiff(diffGraphs(dallas, dallas))).toBe(true);
    const again = diffGraphFromDocument(importGraphJson(dallasText), 'again.json');
    const d = diffGraphs(dallas, again);
    expect(isEmptyDiff(d)).toBe(true);
    expect(d.nodes.totals.unchanged).toBe(dallas.nodes.length);
    expect(d.edges.totals.unchanged).toBe(dallas.edges.weight.length);
  });
});
