/**
 * The workspace store against an in-memory backend (FakeGraphs): opening a trace at its own
 * thresholds, threshold moves (filtered at once when tighter, re-fetched once per burst when
 * looser, late answers dropped), compare panes, the route that reopens them, selection, and a
 * pane's error.
 */
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi, FakeGraphs } from '../api/fake-client.ts';
import { provideApi } from '../api/inject.ts';
import type { GraphView, ViewNode } from '../api/types.ts';
import { viewNode } from '../graph/testing.ts';
import { useWorkspace } from './workspace.ts';

const TRACE = 7;
const OTHER = 8;
/** Two tokens, ten features of rising cumulative influence (0.05 … 0.95), one logit. */
const NODES: ViewNode[] = [
  viewNode({ id: 'E_0_1', kind: 'token', layer: -1, position: 1, token: 'The' }),
  viewNode({ id: 'E_1_2', kind: 'token', layer: -1, position: 2, token: ' cat' }),
  ...Array.from({ length: 10 }, (_, i) =>
    viewNode({
      id: `${i % 4}_${i}_2`,
      kind: 'feature',
      layer: i % 4,
      index: i,
      position: 2,
      influence: 0.05 + i * 0.1,
    }),
  ),
  viewNode({ id: 'L_9_2', kind: 'logit', layer: 5, position: 2, token: ' sat', probability: 0.5 }),
];

let api: FakeApi;
let graphs: FakeGraphs;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const viewCalls = () => api.paramsOf('graphs.view');
const featureCount = (v: GraphView | null) => v?.nodes.filter((n) => n.kind === 'feature').length;

beforeEach(() => {
  api = new FakeApi();
  graphs = new FakeGraphs(api);
  graphs.add({ id: TRACE }, NODES);
  graphs.add({ id: OTHER, prompt: 'another' }, NODES.slice(0, 6));
  provideApi(api);
  setActivePinia(createPinia());
});

describe('workspace store', () => {
  it('opens a trace at its own thresholds, with its annotations, and writes the route', async () => {
    const ws = useWorkspace();
    ws.select(OTHER, '1_1_2');
    await ws.openTrace(TRACE);
    expect(ws.selected).toBeNull();
    const pane = ws.mainPane!;
    expect([pane.nodeThreshold, pane.edgeThreshold]).toEqual([0.8, 0.98]);
    expect(viewCalls()).toEqual([
      { traceId: TRACE, nodeThreshold: 0.8, edgeThreshold: 0.98, edges: 'packed' },
    ]);
    expect(api.paramsOf('annotations.get')).toEqual([{ traceId: TRACE }]);
    // 0.05 … 0.75 are under 0.8: eight features, plus the tokens and the logit.
    expect(featureCount(pane.view)).toBe(8);
    // The edges came packed and are typed arrays here: the fake chains consecutive nodes.
    expect(pane.view!.packedEdges).toBeUndefined();
    expect(pane.view!.edges.source).toBeInstanceOf(Uint32Array);
    expect(Array.from(pane.view!.edges.target)).toEqual(pane.view!.nodes.slice(1).map((_, i) => i + 1));
    expect(pane.filter?.nodeCount).toBe(11);
    expect([pane.loading, pane.error]).toEqual([false, null]);
    expect(ws.route).toBe(`#/trace/${TRACE}?nt=0.8&et=0.98`);
    expect(ws.layouts[TRACE]).toBeDefined();
  });

  it('filters a tighter threshold from the stored view without asking the API', async () => {
    const ws = useWorkspace();
    await ws.openTrace(TRACE);
    const pane = ws.mainPane!;
    ws.setThresholds(pane.id, 0.3512, 0.98);
    expect(pane.nodeThreshold).toBe(0.351);
    await wait(300);
    expect(viewCalls()).toHaveLength(1);
    // 0.05, 0.15, 0.25 under 0.351 (and the first feature above it, kept as in the service).
    expect(ws.mainPane!.filter!.nodeCount).toBeLessThan(11);
    expect(ws.mainPane!.filter!.nodeMask.reduce((a, b) => a + b, 0)).toBe(ws.mainPane!.filter!.nodeCount);
  });

  it('re-fetches a looser threshold once per burst of slider moves, clamped to [0, 1]', async () => {
    const ws = useWorkspace();
    await ws.openTrace(TRACE);
    const id = ws.mainPane!.id;
    ws.setThresholds(id, 0.85, 0.98);
    ws.setThresholds(id, 0.9, 0.98);
    ws.setThresholds(id, 1.7, 0.98);
    await wait(400);
    expect(viewCalls().slice(1)).toEqual([
      { traceId: TRACE, nodeThreshold: 1, edgeThreshold: 0.98, edges: 'packed' },
    ]);
    expect(ws.mainPane!.view!.nodeThreshold).toBe(1);
    expect(featureCount(ws.mainPane!.view)).toBe(10);
    expect(ws.mainPane!.loading).toBe(false);
  });

  it('drops a re-fetched view that arrives after a newer one was asked for', async () => {
    const ws = useWorkspace();
    await ws.openTrace(TRACE);
    const id = ws.mainPane!.id;
    // The first re-fetch is answered only after the second one.
    const answer = api.handlerOf('graphs.view');
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    api.handle('graphs.view', async (p) => {
      const view = await answer(p);
      if (++calls === 1) await held;
      return view;
    });
    ws.mainPane!.nodeThreshold = 0.9;
    const a = ws.refetch(id);
    ws.mainPane!.nodeThreshold = 0.95;
    await ws.refetch(id);
    expect(ws.mainPane!.view!.nodeThreshold).toBe(0.95);
    release();
    await a;
    expect(ws.mainPane!.view!.nodeThreshold).toBe(0.95);
    expect(ws.mainPane!.loading).toBe(false);
    expect(
      viewCalls()
        .slice(1)
        .map((p) => p.nodeThreshold),
    ).toEqual([0.9, 0.95]);
  });

  it('compares the trace at a lower threshold beside it; the route reopens both; closing one leaves the other', async () => {
    const ws = useWorkspace();
    await ws.openTrace(TRACE);
    await ws.addComparePane();
    expect(ws.comparing).toBe(true);
    expect(ws.panes.map((p) => [p.traceId, p.nodeThreshold, p.edgeThreshold])).toEqual([
      [TRACE, 0.8, 0.98],
      [TRACE, 0.6, 0.98],
    ]);
    await ws.addComparePane(OTHER);
    ws.subgraphOpen = true;
    const route = ws.route;
    expect(route).toBe(`#/compare?panes=${TRACE}:0.8:0.98,${TRACE}:0.6:0.98,${OTHER}:0.8:0.98&subgraph=1`);

    setActivePinia(createPinia());
    const again = useWorkspace();
    expect(await again.restore(route)).toBe(true);
    expect(again.route).toBe(route);
    expect(again.panes.every((p) => p.view !== null)).toBe(true);

    again.closePane(again.panes[1].id);
    expect(again.panes.map((p) => p.traceId)).toEqual([TRACE, OTHER]);
    again.closePane(again.panes[1].id);
    expect(again.comparing).toBe(false);
    expect(again.route).toBe(`#/trace/${TRACE}?nt=0.8&et=0.98&subgraph=1`);
    expect(await again.restore('#/nothing')).toBe(false);
  });

  it('shows another trace in a pane in place, at that trace’s thresholds', async () => {
    const ws = useWorkspace();
    await ws.openTrace(TRACE);
    await ws.addComparePane();
    const right = ws.panes[1].id;
    await ws.setPaneTrace(right, OTHER);
    expect(ws.panes.map((p) => [p.id, p.traceId, p.nodeThreshold])).toEqual([
      [ws.panes[0].id, TRACE, 0.8],
      [right, OTHER, 0.8],
    ]);
    expect(featureCount(ws.panes[1].view)).toBe(4);
  });

  it('selects, focuses and clears, shared by every pane', async () => {
    const ws = useWorkspace();
    await ws.openTrace(TRACE);
    ws.hover('1_1_2');
    ws.focus(TRACE, '2_2_2');
    expect(ws.selected).toEqual({ traceId: TRACE, nodeId: '2_2_2' });
    expect(ws.focusRequest).toEqual({ nodeId: '2_2_2', seq: 1 });
    ws.focus(TRACE, '2_2_2');
    expect(ws.focusRequest.seq).toBe(2);
    ws.clearSelection();
    expect([ws.selected, ws.hovered]).toEqual([null, null]);
  });

  it('shows a pane’s error when its trace cannot be loaded', async () => {
    const ws = useWorkspace();
    await ws.openTrace(404);
    expect(ws.mainPane).toMatchObject({
      traceId: 404,
      view: null,
      loading: false,
      error: 'trace 404 not found',
    });
  });

  it('opens an imported graph at its own thresholds only (tighter is filtered, never re-fetched)', async () => {
    graphs.add(
      { id: 9, source: 'import', settings: { ...graphs.traces.get(TRACE)!.settings, nodeThreshold: 0.5 } },
      NODES,
    );
    const ws = useWorkspace();
    await ws.openTrace(9, 0.9, 0.99);
    expect(viewCalls()).toEqual([{ traceId: 9, edges: 'packed' }]);
    expect([ws.mainPane!.nodeThreshold, ws.mainPane!.edgeThreshold]).toEqual([0.5, 0.98]);
    ws.setThresholds(ws.mainPane!.id, 0.9, 0.98);
    await wait(300);
    expect(viewCalls()).toHaveLength(1);
    expect(ws.mainPane!.nodeThreshold).toBe(0.5);
  });
});
