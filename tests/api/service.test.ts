/**
 * The service through the in-process client, on a real library and the real engine (tiny-gemma2
 * fixture, token ids): models, traces (start, progress, cancel, fail, retrace, delete), pruned
 * views and re-pruning, labels, annotations, graph JSON export and import, recovery after a stop.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TRACE_SETTINGS, type TraceProgress, type TraceRecord } from '../../electron/api/contract.ts';
import { WorkbenchService } from '../../electron/api/service.ts';
import { buildGraphView } from '../../electron/api/view.ts';
import { mergeTraceSettings } from '../../electron/engine/attribution/defaults.ts';
import type { FeatureRecord } from '../../electron/engine/dashboards/types.ts';
import { importGraphJson } from '../../electron/engine/graph-json/import.ts';
import { pruneGraph } from '../../electron/engine/pruning/index.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { emptyAnnotations } from '../../electron/store/annotations.ts';
import { Store } from '../../electron/store/store.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { type Harness, harness, rejection, settled, TINY } from './helpers.ts';

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-api-cache-'));
let h: Harness;
let modelId: number;
let trace: TraceRecord;

beforeAll(() => {
  h = harness(cacheRoot);
});
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

/** Starts a trace and waits for its final status. */
async function traceToEnd(params: Parameters<typeof h.client.call<'traces.start'>>[1]): Promise<TraceRecord> {
  let id = -1;
  const end = settled(h.client, () => id);
  const t = await h.client.call('traces.start', params);
  id = t.id;
  return end;
}

describe('trace settings', () => {
  it('bound the feature rows by default: absent or null take 7500, an explicit cap is kept', () => {
    expect(DEFAULT_TRACE_SETTINGS.maxFeatureNodes).toBe(7500);
    expect(mergeTraceSettings(DEFAULT_TRACE_SETTINGS, undefined).maxFeatureNodes).toBe(7500);
    expect(mergeTraceSettings(DEFAULT_TRACE_SETTINGS, { maxFeatureNodes: null }).maxFeatureNodes).toBe(7500);
    expect(mergeTraceSettings(DEFAULT_TRACE_SETTINGS, { maxFeatureNodes: 50_000 }).maxFeatureNodes).toBe(
      50_000,
    );
    // a trace stored before the default (null = all) re-traces with the default
    const old = { ...DEFAULT_TRACE_SETTINGS, maxFeatureNodes: null };
    expect(mergeTraceSettings(old, { batchSize: 64 })).toMatchObject({
      maxFeatureNodes: 7500,
      batchSize: 64,
    });
  });
});

describe('models', () => {
  it('registers a model after validating it, and reports exactly what does not fit', async () => {
    const m = await h.client.call('models.register', {
      checkpointDir: TINY.checkpointDir(),
      transcoderDir: TINY.transcoderDir(),
      name: 'tiny gemma',
    });
    expect(m).toMatchObject({ name: 'tiny gemma', valid: true, family: 'gemma2', nLayers: 3 });
    expect(m.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(m.validation.problems).toEqual([]);
    modelId = m.id;
    const sets = await h.client.call('models.transcoderSets', {});
    expect(sets.map((s) => s.id)).toEqual([m.transcoderSetId]);

    const bad = await h.client.call('models.register', {
      checkpointDir: fixturePath('tiny-gpt2'),
      transcoderDir: TINY.transcoderDir(),
    });
    expect(bad.valid).toBe(false);
    expect(bad.validation.problems.length).toBeGreaterThan(0);
    expect(bad.validation.problems[0].message).toMatch(/\S/);
    const e = await rejection(h.client.call('traces.start', { modelId: bad.id, tokenIds: [1, 2] }));
    expect(e).toMatchObject({ code: 'conflict', field: 'modelId' });
    expect(e.message).toMatch(/did not pass validation/);

    const missing = await h.client.call('models.register', {
      checkpointDir: path.join(os.tmpdir(), 'no-such-model-folder'),
      transcoderDir: TINY.transcoderDir(),
    });
    expect(missing.valid).toBe(false);
    expect(missing.validation.problems[0]).toMatchObject({ code: 'missing' });
    await h.client.call('models.delete', { id: missing.id });
    expect((await h.client.call('models.list', {})).map((x) => x.id)).toEqual([m.id, bad.id]);
  });
});

describe('bad input gets an early invalid_params (issue 14, item 8)', () => {
  it('traces.start refuses prompt and tokenIds together', async () => {
    const e = await rejection(h.client.call('traces.start', { modelId, prompt: 'a b', tokenIds: [1, 2] }));
    expect(e).toMatchObject({ code: 'invalid_params', field: 'tokenIds' });
    expect(e.message).toMatch(/not both/);
  });

  it('features.putDashboards refuses a layer or index outside the transcoder set', async () => {
    const m = await h.client.call('models.get', { id: modelId });
    const setId = m.transcoderSetId as number;
    const record = (layer: number, index: number) =>
      ({ layer, index, examples_quantiles: [] }) as unknown as FeatureRecord;
    const e = await rejection(
      h.client.call('features.putDashboards', {
        transcoderSetId: setId,
        records: [record(0, 0), record(99, 0)],
      }),
    );
    expect(e).toMatchObject({ code: 'invalid_params', field: 'records[1].layer' });
    expect(e.message).toMatch(/3 layers/);
    const e2 = await rejection(
      h.client.call('features.putDashboards', { transcoderSetId: setId, records: [record(0, 2 ** 30)] }),
    );
    expect(e2).toMatchObject({ code: 'invalid_params', field: 'records[0].index' });
  });
});

describe('traces', () => {
  it('runs a queued trace to done with progress events, and stores its graph whole', async () => {
    const progress: TraceProgress[] = [];
    const off = h.client.on('trace.progress', (d) => progress.push(d.progress));
    trace = await traceToEnd({
      modelId,
      tokenIds: TINY.tokenIds,
      tags: ['golden'],
      settings: { batchSize: 32 },
    });
    off();
    expect(trace.status).toBe('done');
    expect(trace.error).toBeNull();
    expect(trace.tokenIds).toEqual(TINY.tokenIds);
    expect(trace.settings).toMatchObject({
      batchSize: 32,
      nodeThreshold: 0.8,
      edgeThreshold: 0.98,
      maxFeatureNodes: 7500, // the default cap, stored as the cap the trace ran with
    });
    expect(trace.timings).toHaveProperty('features');
    expect(trace.prompt).not.toBe(''); // the prompt tokens, when only ids were given
    expect(progress.map((p) => p.phase)).toContain('features');
    const detail = await h.client.call('traces.get', { id: trace.id });
    expect(detail.views).toHaveLength(1);
    expect(detail.graph!.nNodes).toBe(trace.graph!.nNodes);
    const fresh = h.compute.traced[0].raw;
    const stored = h.store.graphs.loadRaw(trace.id);
    expect(Buffer.from(stored.adjacency.buffer).equals(Buffer.from(fresh.adjacency.buffer))).toBe(true);
  });

  it('serves the default view and re-prunes at any thresholds exactly as pruning the fresh graph', async () => {
    const fresh = h.compute.traced[0].raw;
    const expected = (nt: number, et: number) =>
      buildGraphView({
        traceId: trace.id,
        nodes: fresh.nodes,
        pruned: pruneGraph(fresh, { nodeThreshold: nt, edgeThreshold: et }),
        featureLabels: new Map(),
        annotations: emptyAnnotations(trace.id),
        pinned: [],
        cached: false,
      });
    const def = await h.client.call('graphs.view', { traceId: trace.id });
    expect(def.cached).toBe(true);
    const { cached: _c, ...defRest } = def;
    const { cached: _e, ...expRest } = expected(0.8, 0.98);
    expect(defRest).toEqual(JSON.parse(JSON.stringify(expRest)));

    for (const [nt, et] of [
      [0.5, 0.9],
      [0.95, 0.995],
      [0.6, 0.7],
    ]) {
      const before = h.compute.prunes;
      const v = await h.client.call('graphs.view', {
        traceId: trace.id,
        nodeThreshold: nt,
        edgeThreshold: et,
      });
      expect(v.cached).toBe(false);
      expect(h.compute.prunes).toBe(before + 1);
      const e = JSON.parse(JSON.stringify(expected(nt, et)));
      expect(v.nodes).toEqual(e.nodes);
      expect(v.edges).toEqual(e.edges);
      expect([v.replacementScore, v.completenessScore]).toEqual([e.replacementScore, e.completenessScore]);
      const again = await h.client.call('graphs.view', {
        traceId: trace.id,
        nodeThreshold: nt,
        edgeThreshold: et,
      });
      expect(again.cached).toBe(true);
      expect(again.nodes).toEqual(v.nodes);
      expect(h.compute.prunes).toBe(before + 1);
    }
    // re-pruning from the stored adjacency after a restart (no in-memory cache) agrees too
    await h.compute.inner.close();
    const summary = await h.client.call('graphs.prune', {
      traceId: trace.id,
      nodeThreshold: 0.42,
      edgeThreshold: 0.93,
    });
    const v = await h.client.call('graphs.view', {
      traceId: trace.id,
      nodeThreshold: 0.42,
      edgeThreshold: 0.93,
    });
    expect(v.cached).toBe(true);
    expect(summary.nNodes).toBe(v.nodes.length);
    expect(v.edges).toEqual(JSON.parse(JSON.stringify(expected(0.42, 0.93).edges)));
    expect((await h.client.call('graphs.views', { traceId: trace.id })).length).toBe(5);
  });

  it('labels features for the whole transcoder set and finds traces by feature', async () => {
    const v = await h.client.call('graphs.view', { traceId: trace.id });
    const f = v.nodes.find((n) => n.kind === 'feature')!;
    const setId = trace.transcoderSetId!;
    const info = await h.client.call('features.setLabel', {
      transcoderSetId: setId,
      layer: f.layer,
      index: f.index,
      label: ' Texas ',
    });
    expect(info.label).toBe('Texas');
    const again = await h.client.call('graphs.view', { traceId: trace.id });
    expect(again.nodes.find((n) => n.id === f.id)!.label).toBe('Texas');
    expect(
      (await h.client.call('features.search', { transcoderSetId: setId, query: 'tex' })).map((x) => x.index),
    ).toEqual([f.index]);
    const found = await h.client.call('traces.list', { feature: { layer: f.layer, index: f.index } });
    expect(found.traces.map((t) => t.id)).toEqual([trace.id]);
    const logit = v.nodes.find((n) => n.kind === 'logit')!;
    expect(logit.label).toMatch(/^Output ".*" \(p=0\.\d{3}\)$/);
    const e = await rejection(
      h.client.call('features.setLabel', { transcoderSetId: setId, layer: 99, index: 1, label: 'x' }),
    );
    expect(e).toMatchObject({ code: 'invalid_params', field: 'layer' });
  });

  it('pins keep nodes through pruning; annotations name only nodes of the graph', async () => {
    const loose = await h.client.call('graphs.view', {
      traceId: trace.id,
      nodeThreshold: 0.3,
      edgeThreshold: 0.8,
    });
    const all = h.store.graphs.nodes(trace.id);
    const inView = new Set(loose.nodes.map((n) => n.id));
    let pin = '';
    for (let i = 0; i < all.features.layer.length && !pin; i++) {
      const id = `${all.features.layer[i]}_${all.features.index[i]}_${all.features.position[i]}`;
      if (!inView.has(id)) pin = id;
    }
    expect(pin).not.toBe('');
    const ann = await h.client.call('annotations.update', {
      traceId: trace.id,
      pinned: [pin, pin],
      supernodes: [{ label: 'group', nodeIds: [pin, loose.nodes[0].id] }],
      layout: { [pin]: { x: 1, y: 2 } },
      notes: { [pin]: 'why is this here?' },
    });
    expect(ann.pinned).toEqual([pin]);
    const pinned = await h.client.call('graphs.view', {
      traceId: trace.id,
      nodeThreshold: 0.3,
      edgeThreshold: 0.8,
    });
    expect(pinned.cached).toBe(false);
    expect(pinned.pinned).toEqual([pin]);
    expect(pinned.nodes.map((n) => n.id)).toContain(pin);
    const fresh = h.compute.traced[0].raw;
    const idx = Array.from(all.features.layer).findIndex(
      (l, i) => `${l}_${all.features.index[i]}_${all.features.position[i]}` === pin,
    );
    const direct = pruneGraph(fresh, { nodeThreshold: 0.3, edgeThreshold: 0.8, pinned: [idx] });
    expect(pinned.nodes.length).toBe(direct.keptNodes.length);
    expect(pinned.edges.weight).toEqual(Array.from(direct.edges.weight));
    const unpinned = await h.client.call('graphs.view', {
      traceId: trace.id,
      nodeThreshold: 0.3,
      edgeThreshold: 0.8,
      usePins: false,
    });
    expect(unpinned.cached).toBe(true);
    expect(unpinned.nodes.map((n) => n.id)).not.toContain(pin);

    const e1 = await rejection(
      h.client.call('annotations.update', { traceId: trace.id, pinned: ['99_1_1'] }),
    );
    expect(e1).toMatchObject({ code: 'invalid_params', field: 'pinned' });
    expect(e1.message).toMatch(/not in trace \d+'s graph/);
    const e2 = await rejection(
      h.client.call('annotations.update', { traceId: trace.id, pinned: ['nonsense'] }),
    );
    expect(e2).toMatchObject({ code: 'invalid_params', field: 'pinned[0]' });
  });

  it('exports graph JSON with labels and pins, and imports it back as a new trace', async () => {
    const v = await h.client.call('graphs.view', { traceId: trace.id });
    const { json, fileName } = await h.client.call('graphs.exportJson', { traceId: trace.id });
    expect(fileName).toMatch(/\.json$/);
    // No local paths leak (issue 14, item 9): the transcoder folder goes out by name.
    const list = (JSON.parse(json) as { metadata: { transcoder_list: string[] } }).metadata.transcoder_list;
    expect(list).toEqual([path.basename(TINY.transcoderDir())]);
    expect(json).not.toContain(TINY.transcoderDir());
    const doc = importGraphJson(json);
    expect(doc.nodes.map((n) => n.node_id)).toEqual(v.nodes.map((n) => n.id));
    expect(doc.links.source.length).toBe(v.edges.source.length);
    expect([...doc.labels.values()]).toContain('Texas');
    expect(doc.qParams.pinnedIds.length).toBe(1);
    expect(doc.qParams.supernodes[0][0]).toBe('group');

    const imported = await h.client.call('graphs.importJson', { json, tags: ['imported'] });
    expect(imported.trace).toMatchObject({
      source: 'import',
      status: 'done',
      modelId: null,
      tags: ['imported'],
    });
    const iv = await h.client.call('graphs.view', { traceId: imported.trace.id });
    expect(iv.imported).toBe(true);
    expect(iv.nodes.map((n) => n.id)).toEqual(v.nodes.map((n) => n.id));
    expect(iv.nodes.map((n) => n.influence)).toEqual(v.nodes.map((n) => n.influence));
    expect(iv.nodes.map((n) => n.label)).toEqual(v.nodes.map((n) => n.label));
    const key = (g: typeof v) =>
      Array.from(g.edges.source)
        .map((s, e) => `${g.nodes[s].id}>${g.nodes[g.edges.target[e]].id}:${g.edges.weight[e]}`)
        .sort();
    expect(key(iv)).toEqual(key(v));
    expect(iv.replacementScore).toBe(v.replacementScore);
    const again = importGraphJson(
      (await h.client.call('graphs.exportJson', { traceId: imported.trace.id })).json,
    );
    expect(again.nodes.map((n) => n.node_id)).toEqual(doc.nodes.map((n) => n.node_id));

    const e = await rejection(
      h.client.call('graphs.view', { traceId: imported.trace.id, nodeThreshold: 0.5 }),
    );
    expect(e.code).toBe('unsupported');
    const bad = await rejection(h.client.call('graphs.importJson', { json: '{"metadata": {}}' }));
    expect(bad.code).toBe('invalid_params');
    expect(bad.message).toMatch(/graph JSON/);
    expect(bad.message).not.toMatch(/params\.json/);
    const named = await rejection(
      h.client.call('graphs.importJson', { json: '{"metadata": {}}', fileName: 'my-graph.json' }),
    );
    expect(named.message).toMatch(/my-graph\.json/);
    expect(named.message).not.toMatch(/params\.json/);
  });

  it('fails a trace with a readable reason, cancels queued and running traces, re-traces', async () => {
    const failed = await traceToEnd({ modelId, tokenIds: [2, 5, 999] });
    expect(failed.status).toBe('failed');
    expect(failed.error!.message).toMatch(/outside the vocabulary/);
    expect(failed.error!.code).toBe('argument');

    // a long one (one target per batch) and a queued one behind it
    let runningId = -1;
    const running = h.client.call('traces.start', {
      modelId,
      tokenIds: TINY.tokenIds,
      settings: { batchSize: 1 },
    });
    const startedRunning = new Promise<void>((resolve) => {
      const off = h.client.on('trace.progress', (d) => {
        if (d.traceId === runningId && d.progress.phase === 'features') {
          off();
          resolve();
        }
      });
    });
    runningId = (await running).id;
    const queued = await h.client.call('traces.start', { modelId, tokenIds: TINY.tokenIds });
    expect(queued.status).toBe('queued');
    expect((await h.client.call('traces.cancel', { id: queued.id })).status).toBe('cancelled');
    await startedRunning;
    const cancelled = await h.client.call('traces.cancel', { id: runningId });
    expect(cancelled.status).toBe('cancelled');
    expect(h.store.graphs.has(runningId)).toBe(false);
    const e = await rejection(h.client.call('traces.cancel', { id: runningId }));
    expect(e.code).toBe('conflict');

    let retraceId = -1;
    const end = settled(h.client, () => retraceId);
    retraceId = (
      await h.client.call('traces.retrace', { id: trace.id, settings: { maxNLogits: 1, nodeThreshold: 0.5 } })
    ).id;
    const re = await end;
    expect(re.status).toBe('done');
    expect(re.settings).toMatchObject({ maxNLogits: 1, nodeThreshold: 0.5, batchSize: 32 });
    expect(re.graph!.nLogits).toBe(1);
    expect(re.tags).toEqual(['golden']);
  });

  it('deletes to the trash, restores, deletes for good', async () => {
    const t = (await h.client.call('traces.list', { tags: ['imported'] })).traces[0];
    await h.client.call('traces.delete', { id: t.id });
    expect((await h.client.call('traces.list', { tags: ['imported'] })).total).toBe(0);
    expect((await h.client.call('traces.list', { deleted: 'only' })).traces.map((x) => x.id)).toEqual([t.id]);
    await h.client.call('traces.restore', { id: t.id });
    expect((await h.client.call('traces.list', { tags: ['imported'] })).total).toBe(1);
    const files = fs.readdirSync(path.join(h.dir, 'graphs')).length;
    expect(await h.client.call('traces.delete', { id: t.id, permanent: true })).toEqual({
      id: t.id,
      permanent: true,
    });
    expect(fs.readdirSync(path.join(h.dir, 'graphs')).length).toBe(files - 1);
    expect((await rejection(h.client.call('traces.get', { id: t.id }))).code).toBe('not_found');
    const tagged = await h.client.call('traces.tag', { id: trace.id, add: ['b', 'a'], remove: ['golden'] });
    expect(tagged.tags).toEqual(['a', 'b']);
    expect((await h.client.call('traces.update', { id: trace.id, notes: 'checked' })).notes).toBe('checked');
    expect(h.store.check()).toEqual(['ok']);
  });

  it('duplicates a trace: the same graph, views and annotations, in its own file and project', async () => {
    const views = await h.client.call('graphs.views', { traceId: trace.id });
    const ann = await h.client.call('annotations.get', { traceId: trace.id });
    const project = await h.client.call('projects.create', { name: 'Copies' });
    const copy = await h.client.call('traces.duplicate', { id: trace.id, projectId: project.id });
    expect(copy.id).not.toBe(trace.id);
    expect(copy).toMatchObject({
      projectId: project.id,
      status: 'done',
      prompt: trace.prompt,
      tokenIds: trace.tokenIds,
      settings: trace.settings,
      modelId: trace.modelId,
    });
    expect(copy.graph).toMatchObject({ nNodes: trace.graph!.nNodes, nnz: trace.graph!.nnz });
    const a = h.store.graphs.loadRaw(trace.id);
    const b = h.store.graphs.loadRaw(copy.id);
    expect(Buffer.from(b.adjacency.buffer).equals(Buffer.from(a.adjacency.buffer))).toBe(true);
    expect(h.store.graphs.sidecarName(copy.id)).not.toBe(h.store.graphs.sidecarName(trace.id));
    const copiedViews = await h.client.call('graphs.views', { traceId: copy.id });
    const key = (v: (typeof views)[number]) => [
      v.nodeThreshold,
      v.edgeThreshold,
      v.pinned,
      v.isDefault,
      v.nNodes,
    ];
    expect(copiedViews.map(key).sort()).toEqual(views.map(key).sort());
    const copiedAnn = await h.client.call('annotations.get', { traceId: copy.id });
    expect({ ...copiedAnn, traceId: 0, updatedAt: 0 }).toEqual({ ...ann, traceId: 0, updatedAt: 0 });
    // The copy is independent: annotating it leaves the original as it was.
    await h.client.call('annotations.update', { traceId: copy.id, pinned: [] });
    expect((await h.client.call('annotations.get', { traceId: trace.id })).pinned).toEqual(ann.pinned);
    const queued = await h.client.call('traces.start', { modelId, tokenIds: TINY.tokenIds });
    await h.client.call('traces.cancel', { id: queued.id });
    const e = await rejection(h.client.call('traces.duplicate', { id: queued.id }));
    expect(e).toMatchObject({ code: 'conflict' });
    expect(e.message).toMatch(/only a trace with a graph/);
    expect(h.store.check()).toEqual(['ok']);
  });
});

describe('recovery', () => {
  it('only one process runs a library queue', async () => {
    const second = Store.open(h.dir);
    try {
      const svc = () => new WorkbenchService({ store: second, compute: new InProcessCompute({ cacheRoot }) });
      expect(() => svc().start()).toThrow(/already served by this process/);
      const readOnly = new WorkbenchService({
        store: second,
        compute: new InProcessCompute(),
        runJobs: false,
      }).start();
      expect((await readOnly.call('traces.list', {})).total).toBeGreaterThan(0);
      await readOnly.close();
    } finally {
      second.close();
    }
  });

  it('a trace queued or interrupted while the app was down runs when it starts again', async () => {
    const h2 = harness(cacheRoot, { runJobs: false });
    let id: number;
    let interruptedId: number;
    try {
      const m = await h2.client.call('models.register', {
        checkpointDir: TINY.checkpointDir(),
        transcoderDir: TINY.transcoderDir(),
      });
      id = (await h2.client.call('traces.start', { modelId: m.id, tokenIds: TINY.tokenIds })).id;
      interruptedId = (await h2.client.call('traces.start', { modelId: m.id, tokenIds: [2, 7, 9] })).id;
      // as if a process had claimed it and died mid-run
      const job = h2.store.jobs.claimAny(['trace'])!;
      expect(job.traceId).toBe(id);
      h2.store.traces.setStatus(id, 'running', { startedAt: Date.now() });
    } finally {
      await h2.close();
    }
    const h3 = harness(cacheRoot, { dir: h2.dir });
    try {
      await h3.service.idle();
      expect(h3.store.traces.get(id!).status).toBe('done');
      expect(h3.store.traces.get(interruptedId!).status).toBe('done');
      expect(h3.store.jobs.list({ states: ['queued', 'running', 'interrupted'] })).toEqual([]);
    } finally {
      await h3.close();
      fs.rmSync(h2.dir, { recursive: true, force: true });
    }
  });

  it('a trace whose runs the app stopped three times fails as interrupted instead of running again', async () => {
    const h2 = harness(cacheRoot, { runJobs: false });
    let id: number;
    try {
      const m = await h2.client.call('models.register', {
        checkpointDir: TINY.checkpointDir(),
        transcoderDir: TINY.transcoderDir(),
      });
      id = (await h2.client.call('traces.start', { modelId: m.id, tokenIds: TINY.tokenIds })).id;
      // as if three processes had claimed it in turn, each dying mid-run
      const job = h2.store.jobs.claimAny(['trace'])!;
      h2.store.db.prepare('UPDATE jobs SET attempts = 3 WHERE id = ?').run(job.id);
      h2.store.traces.setStatus(id, 'running', { startedAt: Date.now() });
    } finally {
      await h2.close();
    }
    const h3 = harness(cacheRoot, { dir: h2.dir });
    try {
      await h3.service.idle();
      const t = h3.store.traces.get(id!);
      expect(t.status).toBe('failed');
      expect(t.error).toEqual({
        code: 'interrupted',
        message: 'the app stopped 3 times while this trace ran',
      });
      expect(h3.compute.traced).toEqual([]);
      expect(h3.store.jobs.list({ states: ['queued', 'running', 'interrupted'] })).toEqual([]);
    } finally {
      await h3.close();
      fs.rmSync(h2.dir, { recursive: true, force: true });
    }
  });
});
