/** The renderer's pure graph code: client-side pruning, layout, search, subgraph. */
import { describe, expect, it } from 'vitest';
import type { Annotations, GraphView, ViewNode } from '../api/types.ts';
import { edgeScores, filterView, keepAll, needsRefetch } from './filter.ts';
import { arrangeLayout, jitterOf, layeredLayout } from './layout.ts';
import { crowdScale, sceneFromView } from './scene.ts';
import { searchNodes } from './search.ts';
import { subgraphScene } from './subgraph.ts';
import { viewNode } from './testing.ts';

const node = viewNode;

/** tokens t0,t1 → features f0 (L0), f1 (L0), f2 (L1), error e (L1) → logits a (p .7), b (p .2). */
function view(): GraphView {
  const nodes: ViewNode[] = [
    node({ id: 'E_5_0', kind: 'token', layer: -1, position: 0, index: 5, token: '<bos>', influence: 0.9 }),
    node({ id: 'E_9_1', kind: 'token', layer: -1, position: 1, index: 9, token: ' cat', influence: 0.3 }),
    node({ id: '0_10_1', kind: 'feature', layer: 0, position: 1, index: 10, influence: 0.2, activation: 2 }),
    node({
      id: '0_11_1',
      kind: 'feature',
      layer: 0,
      position: 1,
      index: 11,
      influence: 0.7,
      activation: 1,
      label: 'feline',
    }),
    node({ id: '1_3_1', kind: 'feature', layer: 1, position: 1, index: 3, influence: 0.5, activation: 3 }),
    node({ id: '1_-1_1', kind: 'error', layer: 1, position: 1, influence: 0.75 }),
    node({ id: '3_40_1', kind: 'logit', layer: 3, position: 1, index: 40, probability: 0.7, token: ' sat' }),
    node({ id: '3_41_1', kind: 'logit', layer: 3, position: 1, index: 41, probability: 0.2, token: ' is' }),
  ];
  const E: Array<[number, number, number]> = [
    [1, 2, 2],
    [1, 3, 0.5],
    [2, 4, 1.5],
    [3, 4, 0.2],
    [4, 6, 2],
    [5, 6, 0.3],
    [2, 7, -0.5],
    [0, 7, 0.1],
  ];
  return {
    traceId: 1,
    nodeThreshold: 0.8,
    edgeThreshold: 0.98,
    pinned: [],
    nLayers: 2,
    nPositions: 2,
    promptTokens: ['<bos>', ' cat'],
    unprunedNodes: 20,
    nodes,
    edges: { source: E.map((e) => e[0]), target: E.map((e) => e[1]), weight: E.map((e) => e[2]) },
    replacementScore: 0.8,
    completenessScore: 0.9,
    cached: true,
  };
}

const shownIds = (v: GraphView, m: Uint8Array) => v.nodes.filter((_, i) => m[i]).map((n) => n.id);

describe('filterView', () => {
  it('shows everything stored at the stored thresholds or looser, and says when to refetch', () => {
    const v = view();
    expect(filterView(v, 0.8, 0.98)).toEqual(keepAll(v));
    expect(filterView(v, 0.9, 1)).toEqual(keepAll(v));
    expect(needsRefetch(v, 0.8, 0.98)).toBe(false);
    expect(needsRefetch(v, 0.85, 0.98)).toBe(true);
    expect(needsRefetch(v, 0.5, 0.99)).toBe(true);
  });

  it('keeps nodes below the threshold plus the first one reaching it, tokens and logits always', () => {
    const v = view();
    const r = filterView(v, 0.45, 0.98);
    // f0 (0.2) below, f2 (0.5) is the first at/above; f1 (0.7) and the error (0.75) go.
    expect(shownIds(v, r.nodeMask).sort()).toEqual(
      ['0_10_1', '1_3_1', '3_40_1', '3_41_1', 'E_5_0', 'E_9_1'].sort(),
    );
    expect(r.nodeCount).toBe(6);
    for (let e = 0; e < v.edges.source.length; e++) {
      if (r.edgeMask[e]) expect(r.nodeMask[v.edges.source[e]] && r.nodeMask[v.edges.target[e]]).toBeTruthy();
    }
  });

  it('exempts pinned nodes and cleans up features left without inputs or outputs', () => {
    const v = view();
    const pinned = new Set(['1_-1_1']);
    const r = filterView(v, 0.1, 0.98, pinned);
    const ids = shownIds(v, r.nodeMask);
    expect(ids).toContain('1_-1_1');
    // f0 is kept by the node rule but loses f2 (its only feature target) … it still feeds logit b.
    expect(ids).toContain('0_10_1');
    const r2 = filterView(v, 0.1, 0.98);
    expect(shownIds(v, r2.nodeMask)).not.toContain('1_-1_1');
  });

  it('is monotone in the edge threshold and drops the weakest edges first', () => {
    const v = view();
    let prev = Number.POSITIVE_INFINITY;
    for (const t of [0.98, 0.9, 0.7, 0.5, 0.3]) {
      const r = filterView(v, 0.8, t);
      expect(r.edgeCount).toBeLessThanOrEqual(prev);
      prev = r.edgeCount;
    }
    const scores = edgeScores(v, new Uint8Array(v.nodes.length).fill(1));
    const r = filterView(v, 0.8, 0.5);
    const keptMin = Math.min(...[...scores].filter((_, e) => r.edgeMask[e]));
    const droppedMax = Math.max(0, ...[...scores].filter((_, e) => !r.edgeMask[e]));
    expect(keptMin).toBeGreaterThanOrEqual(droppedMax);
  });

  it('scores edges by their share of the target input times the target influence', () => {
    const v = view();
    const s = edgeScores(v, new Uint8Array(v.nodes.length).fill(1));
    // f2 → logit a carries 2 / 2.3 of a's input, and a's influence is its probability 0.7.
    expect(s[4]).toBeCloseTo((2 / 2.3) * 0.7, 6);
  });
});

describe('layeredLayout', () => {
  it('puts tokens at the bottom, logits on top ordered by probability', () => {
    const v = view();
    const l = layeredLayout([v]);
    const p = (id: string) => l.positions.get(id)!;
    expect(p('E_9_1').y).toBe(0);
    expect(p('3_40_1').y).toBe(l.frame.height);
    expect(p('3_40_1').x).toBeLessThan(p('3_41_1').x);
    expect(p('0_10_1').y).toBeLessThan(p('1_3_1').y);
    expect(p('E_5_0').x).toBeLessThan(p('E_9_1').x);
    expect(l.rowY).toHaveLength(v.nLayers + 2);
  });

  it('gives every node of a union of views one position', () => {
    const v = view();
    const a = { ...v, nodes: v.nodes.slice(0, 5) };
    const b = { ...v, nodes: [...v.nodes.slice(0, 2), ...v.nodes.slice(5)] };
    expect(layeredLayout([a, b]).positions.size).toBe(v.nodes.length);
  });

  /** nPositions tokens; `busy` features at layer 0 of position 1, one at layer 1 of position 3. */
  function wide(nPositions: number, busy: number): GraphView {
    const nodes: ViewNode[] = [];
    for (let p = 0; p < nPositions; p++)
      nodes.push(node({ id: `E_${p}_${p}`, kind: 'token', layer: -1, position: p, token: `t${p}` }));
    for (let i = 0; i < busy; i++)
      nodes.push(
        node({ id: `0_${i}_1`, kind: 'feature', layer: 0, position: 1, index: i, influence: i / busy }),
      );
    nodes.push(node({ id: '1_7_3', kind: 'feature', layer: 1, position: 3, index: 7, influence: 0.5 }));
    return {
      ...view(),
      nLayers: 2,
      nPositions,
      promptTokens: nodes.slice(0, nPositions).map((n) => n.token ?? ''),
      nodes,
      edges: { source: [], target: [], weight: [] },
    };
  }

  it('sizes columns by content and collapses empty positions (unless asked not to)', () => {
    const v = wide(6, 40);
    const l = layeredLayout([v]);
    expect(l.empty).toEqual([true, false, true, false, true, true]);
    // the busy column is wider than the one-node column, which is wider than empty ones
    expect(l.columnWidth[1]).toBeGreaterThan(l.columnWidth[3] * 3);
    expect(l.columnWidth[3]).toBeGreaterThan(l.columnWidth[0]);
    expect(l.columnWidth[0]).toBe(l.columnWidth[5]);
    // columns tile the frame without overlapping, in token order
    for (let p = 1; p < 6; p++)
      expect(l.columnX[p] - l.columnX[p - 1]).toBeCloseTo((l.columnWidth[p] + l.columnWidth[p - 1]) / 2, 9);
    // every node of a column stays inside it
    for (const [id, s] of l.slots) {
      const x = l.positions.get(id)!.x;
      expect(Math.abs(x - l.columnX[s.column])).toBeLessThanOrEqual(l.columnWidth[s.column] / 2);
    }
    const open = arrangeLayout(l, { collapseEmpty: false });
    expect(open.columnWidth[0]).toBe(open.columnWidth[3]);
    expect(open.frame.width).toBeGreaterThan(l.frame.width);
    // same slots, same order inside a cell
    expect(open.positions.get('0_3_1')!.x).toBeLessThan(open.positions.get('0_4_1')!.x);
  });

  it('fits the frame to the pane aspect and keeps one band per layer', () => {
    for (const T of [4, 40, 128]) {
      const v = wide(T, 200);
      for (const aspect of [1, 1.6, 3]) {
        const l = layeredLayout([v], { aspect });
        const [x0, x1] = l.frame.bbox.x;
        const [y0, y1] = l.frame.bbox.y;
        expect((x1 - x0) / (y1 - y0)).toBeCloseTo(aspect, 6);
        // jittered nodes stay within half a row of their layer: rows never interleave
        const pitch = l.rowY[1] - l.rowY[0];
        for (const [id, s] of l.slots)
          expect(Math.abs(l.positions.get(id)!.y - l.rowY[s.row])).toBeLessThanOrEqual(pitch * 0.3 + 1e-9);
      }
    }
    // a dense cell is spread over its row band (not a single line, not two sub-rows)
    const l = layeredLayout([wide(6, 200)]);
    const ys = [...l.slots]
      .filter(([, s]) => s.row === 1 && s.column === 1)
      .map(([id]) => l.positions.get(id)!.y);
    const distinct = new Set(ys.map((y) => y.toFixed(3)));
    expect(distinct.size).toBeGreaterThan(20);
    // a cell with a slot per node in layout units is jittered when the pane is too narrow for it
    const roomy = wide(4, 12);
    const band = (lay: ReturnType<typeof layeredLayout>) =>
      new Set(
        [...lay.slots].filter(([, s]) => s.row === 1).map(([id]) => lay.positions.get(id)!.y.toFixed(3)),
      ).size;
    expect(band(layeredLayout([roomy], { widthPx: 4000 }))).toBe(1);
    expect(band(layeredLayout([roomy], { widthPx: 120 }))).toBeGreaterThan(6);
    expect(jitterOf(0)).toBe(-0.5);
  });
});

describe('crowdScale', () => {
  it('draws glyphs full size while they have room, smaller in crowded views', () => {
    expect(crowdScale(48, 1300, 650)).toBe(1);
    expect(crowdScale(10_000, 1300, 650)).toBeCloseTo(Math.sqrt(84.5) / 28, 6);
    expect(crowdScale(1_000_000, 1300, 650)).toBe(0.3);
  });
});

describe('searchNodes', () => {
  it('finds by id, layer/feature, label and token', () => {
    const v = view();
    expect(searchNodes(v, '1_3_1')[0].node.id).toBe('1_3_1');
    expect(searchNodes(v, 'L0/11')[0].node.id).toBe('0_11_1');
    expect(searchNodes(v, '0 #10')[0].node.id).toBe('0_10_1');
    expect(searchNodes(v, 'feli')[0].node.id).toBe('0_11_1');
    expect(searchNodes(v, 'sat')[0].node.id).toBe('3_40_1');
    expect(
      searchNodes(v, 'L1')
        .map((h) => h.node.id)
        .sort(),
    ).toEqual(['1_-1_1', '1_3_1']);
    expect(searchNodes(v, '')).toEqual([]);
  });
});

describe('subgraphScene', () => {
  it('draws pinned nodes, merges a supernode and sums its edges', () => {
    const v = view();
    const ann: Annotations = {
      traceId: 1,
      pinned: ['0_10_1', '0_11_1', '1_3_1', '3_40_1'],
      supernodes: [{ label: 'cat features', nodeIds: ['0_10_1', '0_11_1'] }],
      layout: {},
      labels: {},
      notes: {},
      updatedAt: null,
    };
    const s = subgraphScene(v, ann, 'The cat');
    expect(s.nodes.map((n) => n.id).sort()).toEqual(['1_3_1', '3_40_1', 'supernode:0'].sort());
    expect(s.nodes.find((n) => n.id === 'supernode:0')?.label).toBe('cat features (2)');
    const grouped = s.edges.find((e) => e.source === 'supernode:0' && e.target === '1_3_1');
    expect(grouped?.weight).toBeCloseTo(1.7, 9);
    expect(s.edges.some((e) => e.source === e.target)).toBe(false);
    const moved = subgraphScene(v, { ...ann, layout: { '1_3_1': { x: 5, y: 6 } } }, 'x');
    expect(moved.nodes.find((n) => n.id === '1_3_1')).toMatchObject({ x: 5, y: 6 });
  });
});

describe('node sizes', () => {
  it('size features by influence by default, or by activation relative to the largest in the view', () => {
    const v = view();
    const l = layeredLayout([v]);
    const size = (s: ReturnType<typeof sceneFromView>, id: string) => s.nodes.find((n) => n.id === id)!.size;
    const byInfluence = sceneFromView(v, l, keepAll(v), 't');
    // influence 0.2 (more important) is drawn larger than influence 0.5
    expect(size(byInfluence, '0_10_1')).toBeGreaterThan(size(byInfluence, '1_3_1'));
    const byActivation = sceneFromView(v, l, keepAll(v), 't', { sizeBy: 'activation' });
    // activation 3 is the view's largest: full size; activation 1 a third of the way
    expect(size(byActivation, '1_3_1')).toBeCloseTo(10.5, 6);
    expect(size(byActivation, '0_11_1')).toBeCloseTo(3.5 + 7 / 3, 6);
    expect(size(byActivation, '1_3_1')).toBeGreaterThan(size(byActivation, '0_10_1'));
    // errors, tokens and logits do not depend on the choice
    for (const id of ['1_-1_1', 'E_9_1', '3_40_1'])
      expect(size(byActivation, id)).toBe(size(byInfluence, id));
    // the size scale is the stored view's, so filtering nodes out does not rescale the rest
    const fewer = filterView(v, 0.3, 1);
    const filtered = sceneFromView(v, l, fewer, 't', { sizeBy: 'activation' });
    expect(filtered.nodes.length).toBeLessThan(byActivation.nodes.length);
    expect(size(filtered, '0_10_1')).toBe(size(byActivation, '0_10_1'));
  });
});
