/**
 * Interventions through the API on a real library and the real engine (tiny-gemma2 fixture):
 * queued as jobs with progress, stored with their trace, cancelled, deleted, recovered after a
 * stop; the open loop agrees with the stored graph's edges; bad requests get readable errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InterventionRecord, TraceProgress, TraceRecord } from '../../electron/api/contract.ts';
import { nodeLayout } from '../../electron/engine/attribution/graph-types.ts';
import { type Harness, harness, nextEvent, rejection, settled, TINY } from './helpers.ts';

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-iv-api-cache-'));
let h: Harness;
let modelId: number;
let trace: TraceRecord;

beforeAll(async () => {
  h = harness(cacheRoot);
  modelId = (
    await h.client.call('models.register', {
      checkpointDir: TINY.checkpointDir(),
      transcoderDir: TINY.transcoderDir(),
    })
  ).id;
  let id = -1;
  const end = settled(h.client, () => id);
  id = (await h.client.call('traces.start', { modelId, tokenIds: TINY.tokenIds })).id;
  trace = await end;
  expect(trace.status).toBe('done');
});
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

/** Starts an intervention and waits for its final status. */
async function runToEnd(params: Parameters<typeof h.client.call<'interventions.start'>>[1]) {
  let id = -1;
  const end = nextEvent(
    h.client,
    'intervention.updated',
    (d) => d.intervention.id === id && ['done', 'failed', 'cancelled'].includes(d.intervention.status),
  );
  id = (await h.client.call('interventions.start', params)).id;
  return (await end).intervention;
}

/** The graph's feature nodes with their raw indices, strongest direct edge into the top logit first. */
function featuresByTopLogitEdge() {
  const raw = h.store.graphs.loadRaw(trace.id);
  const lay = nodeLayout(raw.nodes);
  const f = raw.nodes.features;
  const topRow = lay.logitOffset * lay.total;
  return {
    raw,
    lay,
    features: Array.from({ length: lay.nFeatures }, (_, i) => ({
      i,
      layer: f.layer[i],
      feature: f.index[i],
      position: f.position[i],
      activation: f.activation[i],
    })).sort((a, b) => Math.abs(raw.adjacency[topRow + b.i]) - Math.abs(raw.adjacency[topRow + a.i])),
  };
}

describe('interventions', () => {
  it('runs a closed-loop ablation as a job with progress and stores the outcome with the trace', async () => {
    const { features } = featuresByTopLogitEdge();
    const target = features.find((x) => x.position < TINY.tokenIds.length - 1) ?? features[0];
    const progress: TraceProgress[] = [];
    const off = h.client.on('intervention.progress', (d) => progress.push(d.progress));
    const iv = await runToEnd({
      traceId: trace.id,
      edits: [{ layer: target.layer, feature: target.feature, position: target.position, mode: 'ablate' }],
      generate: 2,
    });
    off();
    expect(iv.error).toBeNull();
    expect(iv.status).toBe('done');
    expect(iv.label).toBe(`ablate ${target.layer}_${target.feature}_${target.position} (closed loop)`);
    expect(iv.spec).toEqual({
      loop: 'closed',
      edits: [{ layer: target.layer, feature: target.feature, position: target.position, mode: 'ablate' }],
      freezeAttention: false,
      generate: 2,
      top: 10,
    });
    expect(progress.map((p) => p.phase)).toContain('load');
    const r = iv.result!;
    expect(r.loop).toBe('closed');
    expect(r.topBefore).toHaveLength(10);
    expect(r.topAfter).toHaveLength(10);
    // Before = the model's own distribution: the trace's top logit is the top prediction.
    expect(r.topBefore[0]).toBe(h.store.graphs.loadRaw(trace.id).nodes.logits.tokenId[0]);
    const sum = r.predictions.reduce((a, p) => a + p.probBefore, 0);
    expect(sum).toBeLessThanOrEqual(1 + 1e-6);
    expect(r.predictions.every((p) => p.token.length > 0)).toBe(true);
    // The edited feature went to zero, is marked, and is a node of the graph.
    const own = r.featureChanges.find((c) => c.edited);
    expect(own).toMatchObject({
      nodeId: `${target.layer}_${target.feature}_${target.position}`,
      after: 0,
      inGraph: true,
    });
    expect(own!.before).toBeCloseTo(target.activation, 4);
    // Something downstream reacted (later layers, same or later positions only: causality).
    const downstream = r.featureChanges.filter((c) => !c.edited);
    expect(downstream.length).toBeGreaterThan(0);
    for (const c of downstream) {
      expect(c.position).toBeGreaterThanOrEqual(target.position);
      if (c.position === target.position) expect(c.layer).toBeGreaterThan(target.layer);
    }
    expect(r.generated).toHaveLength(2);
    expect(r.timingsMs).toHaveProperty('intervene');

    // Stored with the trace, newest first, and the same through get.
    const list = await h.client.call('interventions.list', { traceId: trace.id });
    expect(list[0]).toEqual(iv);
    expect(await h.client.call('interventions.get', { id: iv.id })).toEqual(iv);
  });

  it('open loop: every logit target and feature input moves by minus the stored edge from the ablated feature', async () => {
    const { raw, lay, features } = featuresByTopLogitEdge();
    let worst = 0;
    for (const f of features.slice(0, 3)) {
      const iv = await runToEnd({
        traceId: trace.id,
        loop: 'open',
        edits: [{ layer: f.layer, feature: f.feature, position: f.position, mode: 'ablate' }],
      });
      expect(iv.status).toBe('done');
      const r = iv.result!;
      expect(r.loop).toBe('open');
      // The edited feature's activation; every other activation is frozen.
      const own = r.featureChanges.filter((c) => c.quantity === 'activation');
      expect(own).toHaveLength(1);
      expect(own[0]).toMatchObject({
        nodeId: `${f.layer}_${f.feature}_${f.position}`,
        after: 0,
        edited: true,
        inGraph: true,
      });
      expect(own[0].before).toBeCloseTo(f.activation, 5);
      // The inputs of the features downstream move by minus their edge from it, and only those.
      const inputs = r.featureChanges.filter((c) => c.quantity === 'input');
      const rowOf = new Map<string, number>();
      for (let t = 0; t < lay.nFeatures; t++) {
        const fs = raw.nodes.features;
        rowOf.set(`${fs.layer[t]}_${fs.index[t]}_${fs.position[t]}`, t);
      }
      let maxInEdge = 0;
      for (let t = 0; t < lay.nFeatures; t++)
        maxInEdge = Math.max(maxInEdge, Math.abs(raw.adjacency[t * lay.total + f.i]));
      for (const c of inputs) {
        const t = rowOf.get(c.nodeId)!;
        expect(c.inGraph).toBe(true);
        const edge = raw.adjacency[t * lay.total + f.i];
        worst = Math.max(
          worst,
          Math.abs(c.after - c.before + edge) / Math.max(Math.abs(edge), 1e-2 * maxInEdge),
        );
      }
      const reported = new Set(inputs.map((c) => c.nodeId));
      for (const [id, t] of rowOf) {
        const edge = raw.adjacency[t * lay.total + f.i];
        if (Math.abs(edge) > 1e-3 * maxInEdge && id !== own[0].nodeId)
          expect(reported.has(id), id).toBe(true);
      }
      expect(r.logitChanges.map((c) => c.tokenId)).toEqual(Array.from(raw.nodes.logits.tokenId));
      let maxEdge = 0;
      for (let k = 0; k < lay.nLogits; k++)
        maxEdge = Math.max(maxEdge, Math.abs(raw.adjacency[(lay.logitOffset + k) * lay.total + f.i]));
      r.logitChanges.forEach((c, k) => {
        const edge = raw.adjacency[(lay.logitOffset + k) * lay.total + f.i];
        // Relative to the edge, floored at 1% of this feature's largest edge into a logit.
        expect(Math.abs(c.delta + edge), `feature ${f.i} → logit ${c.tokenId}`).toBeLessThanOrEqual(
          1e-4 * Math.max(Math.abs(edge), 1e-2 * maxEdge),
        );
        expect(c.token.length).toBeGreaterThan(0);
        // Every logit target is among the predictions, so the UI can colour its node.
        expect(r.predictions.some((p) => p.tokenId === c.tokenId)).toBe(true);
      });
    }
    // Measured 8e-5: two float32 frozen runs subtracted (the logits' change is computed directly).
    expect(worst).toBeLessThanOrEqual(1e-3);
  });

  it('set and scale edits: steering a feature up changes the predictions; scale ×1 changes nothing', async () => {
    const { features } = featuresByTopLogitEdge();
    const f = features[0];
    const same = await runToEnd({
      traceId: trace.id,
      edits: [{ layer: f.layer, feature: f.feature, position: f.position, mode: 'scale', value: 1 }],
    });
    for (const p of same.result!.predictions) expect(p.probAfter).toBeCloseTo(p.probBefore, 6);
    const steered = await runToEnd({
      traceId: trace.id,
      label: 'steer up',
      edits: [
        { layer: f.layer, feature: f.feature, position: f.position, mode: 'set', value: 10 * f.activation },
      ],
    });
    expect(steered.label).toBe('steer up');
    const moved = steered.result!.predictions.some((p) => Math.abs(p.probAfter - p.probBefore) > 1e-4);
    expect(moved).toBe(true);
    expect(steered.result!.featureChanges.find((c) => c.edited)?.after).toBeCloseTo(10 * f.activation, 4);
  });

  it('cancels a running intervention (a long continuation) and keeps it listed as cancelled', async () => {
    const { features } = featuresByTopLogitEdge();
    const f = features[0];
    let id = -1;
    const off = h.client.on('intervention.progress', (d) => {
      // Cancel from inside the first continuation step: the abort happens before it returns.
      if (d.interventionId === id && d.progress.phase === 'generate') {
        off();
        void h.client.call('interventions.cancel', { id });
      }
    });
    const end = nextEvent(
      h.client,
      'intervention.updated',
      (d) => d.intervention.id === id && ['done', 'failed', 'cancelled'].includes(d.intervention.status),
    );
    id = (
      await h.client.call('interventions.start', {
        traceId: trace.id,
        generate: 256,
        edits: [{ layer: f.layer, feature: f.feature, position: f.position, mode: 'ablate' }],
      })
    ).id;
    const iv = (await end).intervention;
    expect(iv.status).toBe('cancelled');
    expect(iv.result).toBeNull();
    expect(h.store.interventions.get(id).status).toBe('cancelled');
    expect(h.store.jobs.list({ kind: 'intervene', states: ['queued', 'running'] })).toEqual([]);
  });

  it('rejects what cannot run, naming the field', async () => {
    const edit = { layer: 0, feature: 0, position: 1, mode: 'ablate' as const };
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ edits: [{ ...edit, position: 0 }] }, 'edits[0].position', /BOS/],
      [{ edits: [{ ...edit, position: TINY.tokenIds.length }] }, 'edits[0].position', /\[1, 7\)/],
      [{ edits: [{ ...edit, layer: 3 }] }, 'edits[0].layer', /3 layers/],
      [{ edits: [{ ...edit, feature: 10_000 }] }, 'edits[0].feature', /features per layer/],
      [{ edits: [{ ...edit, value: 2 }] }, 'edits[0]', /absent for ablate/],
      [{ edits: [{ ...edit, mode: 'scale' }] }, 'edits[0]', /required for scale/],
      [{ edits: [edit, edit] }, 'edits[1]', /second time/],
      [{ edits: [] }, 'edits', /got an array of 0/],
      [{ edits: [edit], loop: 'open', generate: 3 }, 'generate', /closed loop only/],
      [{ edits: [edit], freezeAttention: true, generate: 3 }, 'generate', /frozen/],
    ];
    for (const [params, field, message] of cases) {
      const e = await rejection(
        h.client.call('interventions.start', { traceId: trace.id, ...params } as never),
      );
      expect(e.code, JSON.stringify(params)).toBe('invalid_params');
      expect(e.field, JSON.stringify(params)).toBe(field);
      expect(e.message).toMatch(message);
    }
    const missing = await rejection(h.client.call('interventions.start', { traceId: 99_999, edits: [edit] }));
    expect(missing.code).toBe('not_found');
    expect((await rejection(h.client.call('interventions.get', { id: 99_999 }))).code).toBe('not_found');
    const done = (await h.client.call('interventions.list', { traceId: trace.id }))[0];
    const e = await rejection(h.client.call('interventions.cancel', { id: done.id }));
    expect(e).toMatchObject({ code: 'conflict', field: 'id' });
  });

  it('imported graphs and unfinished traces have nothing to intervene on', async () => {
    const json = (await h.client.call('graphs.exportJson', { traceId: trace.id })).json;
    const imported = (await h.client.call('graphs.importJson', { json })).trace;
    const edit = { layer: 0, feature: 0, position: 1, mode: 'ablate' as const };
    const e = await rejection(h.client.call('interventions.start', { traceId: imported.id, edits: [edit] }));
    expect(e).toMatchObject({ code: 'unsupported', field: 'traceId' });
    expect(e.message).toMatch(/imported/);
  });
});

describe('intervention queue', () => {
  it('cancels a queued intervention, deletes, purges with the trace, and recovers after a stop', async () => {
    const h2 = harness(cacheRoot, { runJobs: false });
    let queued: InterventionRecord;
    let cancelled: InterventionRecord;
    let traceId: number;
    const { features } = featuresByTopLogitEdge();
    const f = features[0];
    const edit = { layer: f.layer, feature: f.feature, position: f.position, mode: 'ablate' as const };
    try {
      // A finished trace in the second library: the same graph, saved directly.
      const raw = h.store.graphs.loadRaw(trace.id);
      const m = await h2.client.call('models.register', {
        checkpointDir: TINY.checkpointDir(),
        transcoderDir: TINY.transcoderDir(),
      });
      const stored = h.store.graphs.defaultView(trace.id)!;
      const t = h2.store.saveTrace({
        trace: {
          projectId: h2.store.projects.ensureDefault().id,
          modelId: m.id,
          transcoderSetId: m.transcoderSetId,
          source: 'trace',
          prompt: trace.prompt,
          tokenIds: TINY.tokenIds,
          settings: trace.settings,
        },
        raw,
        views: [{ pruned: stored.pruned }],
      });
      traceId = t.id;
      queued = await h2.client.call('interventions.start', { traceId, edits: [edit] });
      cancelled = await h2.client.call('interventions.start', { traceId, edits: [edit], loop: 'open' });
      expect(queued.status).toBe('queued');
      const c = await h2.client.call('interventions.cancel', { id: cancelled.id });
      expect(c.status).toBe('cancelled');
      expect(h2.store.jobs.list({ kind: 'intervene', states: ['queued'] })).toHaveLength(1);
      // as if a process had claimed the first one and died mid-run
      const job = h2.store.jobs.claimAny(['intervene'])!;
      expect((job.params as { interventionId: number }).interventionId).toBe(queued.id);
      h2.store.interventions.setStatus(queued.id, 'running', { startedAt: Date.now() });
    } finally {
      await h2.close();
    }
    const h3 = harness(cacheRoot, { dir: h2.dir });
    try {
      await h3.service.idle();
      const again = h3.store.interventions.get(queued!.id);
      expect(again.status).toBe('done');
      expect(again.result!.featureChanges.find((x) => x.edited)?.after).toBe(0);
      expect(h3.store.interventions.get(cancelled!.id).status).toBe('cancelled');
      expect(h3.store.jobs.list({ states: ['queued', 'running', 'interrupted'] })).toEqual([]);

      const deleted = nextEvent(h3.client, 'intervention.updated', (d) => d.deleted === true);
      expect(await h3.client.call('interventions.delete', { id: cancelled!.id })).toEqual({
        id: cancelled!.id,
        traceId: traceId!,
      });
      expect((await deleted).intervention.id).toBe(cancelled!.id);
      expect((await h3.client.call('interventions.list', { traceId: traceId! })).map((x) => x.id)).toEqual([
        queued!.id,
      ]);
      await h3.client.call('traces.delete', { id: traceId!, permanent: true });
      expect(h3.store.interventions.find(queued!.id)).toBeNull();
    } finally {
      await h3.close();
      fs.rmSync(h2.dir, { recursive: true, force: true });
    }
  });
});
