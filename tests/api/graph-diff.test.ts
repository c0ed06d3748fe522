/**
 * `graphs.diff` through the in-process client, on a real library and the real engine
 * (tiny-gemma2 fixture): two prompts that differ by one token, a trace with itself, the same
 * trace at two thresholds, traces of other transcoder sets, an imported graph, bad params.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../electron/api/contract.ts';
import { mergedEdgeArrays } from '../../electron/api/packed-edges.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { type Harness, harness, rejection, settled, TINY } from './helpers.ts';

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-api-diff-cache-'));
let h: Harness;
let a: TraceRecord;
let b: TraceRecord;
let other: TraceRecord;
/** TINY.tokenIds with position 5 substituted. */
const SUBSTITUTED = [...TINY.tokenIds.slice(0, 5), 30, TINY.tokenIds[6]];

async function traceToEnd(modelId: number, tokenIds: number[]): Promise<TraceRecord> {
  let id = -1;
  const end = settled(h.client, () => id);
  id = (await h.client.call('traces.start', { modelId, tokenIds })).id;
  const t = await end;
  expect(t.status, JSON.stringify(t.error)).toBe('done');
  return t;
}

beforeAll(async () => {
  h = harness(cacheRoot);
  const plt = await h.client.call('models.register', {
    checkpointDir: TINY.checkpointDir(),
    transcoderDir: TINY.transcoderDir(),
  });
  const clt = await h.client.call('models.register', {
    checkpointDir: TINY.checkpointDir(),
    transcoderDir: path.join(fixturePath('tiny-gemma2'), 'transcoders', 'clt'),
  });
  a = await traceToEnd(plt.id, TINY.tokenIds);
  b = await traceToEnd(plt.id, SUBSTITUTED);
  other = await traceToEnd(clt.id, TINY.tokenIds);
}, 120_000);
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

describe('graphs.diff', () => {
  it('two prompts that differ by a token: a substitution, and the changes sorted by size', async () => {
    const d = await h.client.call('graphs.diff', {
      a: { traceId: a.id },
      b: { traceId: b.id },
      merged: true,
    });
    expect(d.traces.a).toMatchObject({ traceId: a.id, nodeThreshold: 0.8, edgeThreshold: 0.98 });
    expect(d.traces.b.traceId).toBe(b.id);
    expect(d.alignment.method).toBe('substitution');
    expect(d.alignment.substitutions.map((s) => s.position_a)).toEqual([5]);
    expect(d.nodes.totals.only_a + d.nodes.totals.only_b + d.nodes.totals.changed).toBeGreaterThan(0);
    for (let i = 1; i < d.nodes.changed.length; i++)
      expect(Math.abs(d.nodes.changed[i - 1].change)).toBeGreaterThanOrEqual(
        Math.abs(d.nodes.changed[i].change),
      );
    // The substituted token is matched by position.
    const tok = d.nodes.changed.find((c) => c.kind === 'token' && c.position_a === 5);
    expect(tok?.id_a).toBe(`E_${TINY.tokenIds[5]}_5`);
    expect(tok?.id_b).toBe('E_30_5');
    // The merged graph covers both views.
    const va = await h.client.call('graphs.view', { traceId: a.id });
    const vb = await h.client.call('graphs.view', { traceId: b.id });
    const m = d.merged!;
    expect(m.nodes.filter((n) => n.a).length).toBe(va.nodes.length);
    expect(m.nodes.filter((n) => n.b).length).toBe(vb.nodes.length);
    expect(m.edges.filter((e) => e.weight_a !== null).length).toBe(va.edges.source.length);
    expect(m.edges.filter((e) => e.weight_b !== null).length).toBe(vb.edges.source.length);
    expect(d.nLayers).toBe(va.nLayers);
    // top bounds the lists only.
    const top = await h.client.call('graphs.diff', { a: { traceId: a.id }, b: { traceId: b.id }, top: 2 });
    expect(top.nodes.changed).toEqual(d.nodes.changed.slice(0, 2));
    expect(top.nodes.totals).toEqual(d.nodes.totals);
    expect(top.merged).toBeUndefined();
    // Packed: the same merged edges, as typed arrays (weights rounded to float32, absent = NaN).
    const packed = await h.client.call('graphs.diff', {
      a: { traceId: a.id },
      b: { traceId: b.id },
      merged: true,
      edges: 'packed',
    });
    expect(packed.merged?.edges).toEqual([]);
    expect(packed.merged?.nodes).toEqual(m.nodes);
    const arrays = mergedEdgeArrays(packed.merged!);
    expect(arrays.source.length).toBe(m.edges.length);
    m.edges.forEach((e, i) => {
      expect([arrays.source[i], arrays.target[i]]).toEqual([e.source, e.target]);
      expect(arrays.weightA[i]).toBe(e.weight_a === null ? Number.NaN : Math.fround(e.weight_a));
      expect(arrays.weightB[i]).toBe(e.weight_b === null ? Number.NaN : Math.fround(e.weight_b));
    });
  });

  it('a trace with itself is empty; at looser thresholds only B has more', async () => {
    const same = await h.client.call('graphs.diff', { a: { traceId: a.id }, b: { traceId: a.id } });
    expect(same.nodes).toMatchObject({ only_a: [], only_b: [], changed: [] });
    expect(same.edges).toMatchObject({ only_a: 0, only_b: 0, changed: [] });
    const loose = await h.client.call('graphs.diff', {
      a: { traceId: a.id },
      b: { traceId: a.id, nodeThreshold: 1, edgeThreshold: 1 },
    });
    expect(loose.traces.b).toMatchObject({ nodeThreshold: 1, edgeThreshold: 1 });
    expect(loose.nodes.totals.only_a).toBe(0);
    expect(loose.nodes.totals.only_b + loose.edges.only_b).toBeGreaterThan(0);
  });

  it('refuses traces of other transcoder sets, naming the field', async () => {
    const e = await rejection(
      h.client.call('graphs.diff', { a: { traceId: a.id }, b: { traceId: other.id } }),
    );
    expect(e).toMatchObject({ code: 'engine', engineCode: 'mismatch', field: 'model' });
    expect(e.message).toMatch(new RegExp(`trace ${a.id} but .* in trace ${other.id}`));
  });

  it('graphs.nodeIds: every node of the unpruned graph, a superset of any view', async () => {
    const { ids } = await h.client.call('graphs.nodeIds', { traceId: a.id });
    const v = await h.client.call('graphs.view', { traceId: a.id });
    expect(ids.length).toBe(v.unprunedNodes);
    expect(new Set(ids).size).toBe(ids.length);
    const all = new Set(ids);
    for (const n of v.nodes) expect(all.has(n.id)).toBe(true);
    // The substituted token is in B's graph only.
    const idsB = new Set((await h.client.call('graphs.nodeIds', { traceId: b.id })).ids);
    expect(all.has(`E_${TINY.tokenIds[5]}_5`)).toBe(true);
    expect(idsB.has(`E_${TINY.tokenIds[5]}_5`)).toBe(false);
    expect(idsB.has('E_30_5')).toBe(true);
    const e = await rejection(h.client.call('graphs.nodeIds', { traceId: 99_999 }));
    expect(e.code).toBe('not_found');
  });

  it('refuses an imported graph and bad params', async () => {
    const { json } = await h.client.call('graphs.exportJson', { traceId: a.id });
    const imported = (await h.client.call('graphs.importJson', { json, fileName: 'a.json' })).trace;
    let e = await rejection(
      h.client.call('graphs.diff', { a: { traceId: imported.id }, b: { traceId: a.id } }),
    );
    expect(e).toMatchObject({ code: 'unsupported', field: 'traceId' });
    e = await rejection(h.client.call('graphs.diff', { a: { traceId: a.id } } as never));
    expect(e).toMatchObject({ code: 'invalid_params', field: 'b' });
    e = await rejection(
      h.client.call('graphs.diff', { a: { traceId: a.id, nodeThreshold: 2 }, b: { traceId: b.id } }),
    );
    expect(e).toMatchObject({ code: 'invalid_params', field: 'a.nodeThreshold' });
    e = await rejection(h.client.call('graphs.diff', { a: { traceId: a.id }, b: { traceId: 99_999 } }));
    expect(e.code).toBe('not_found');
  });
});
