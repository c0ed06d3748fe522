import { describe, expect, it } from 'vitest';
import type { TraceDiff } from '../../../electron/api/contract.ts';
import { packMergedEdges, unpackMergedEdges } from '../../../electron/api/packed-edges.ts';
import type { NodeSide } from '../../../electron/engine/graph-diff/types.ts';
import { type ClientDiff, columnLabels, mergedGraph } from './diff-style.ts';

const side = (
  id: string,
  kind: NodeSide['kind'],
  position: number,
  extra: Partial<NodeSide> = {},
): NodeSide => ({
  id,
  kind,
  layer: kind === 'token' ? -1 : kind === 'logit' ? 3 : 0,
  index: 1,
  position,
  label: '',
  activation: null,
  influence: null,
  token_prob: null,
  ...extra,
});

/** A diff of prompts [x, Dallas] and [x, big, Oakland]: one insertion, one unmatched pair. */
const diff = {
  nodes: { only_a: [], only_b: [], changed: [], totals: { only_a: 1, only_b: 2, changed: 1, unchanged: 1 } },
  edges: { only_a: 0, only_b: 1, changed: [], totals: { changed: 1, unchanged: 0 } },
  alignment: {
    method: 'lcs',
    columns: [
      { a: 0, b: 0 },
      { a: 1, b: null },
      { a: null, b: 1 },
      { a: null, b: 2 },
    ],
    substitutions: [],
  },
  prompt_tokens: { a: ['x', ' Dallas'], b: ['x', ' big', ' Oakland'] },
  traces: {
    a: { traceId: 7, prompt: 'x Dallas', nodeThreshold: 0.8, edgeThreshold: 0.98 },
    b: { traceId: 9, prompt: 'x big Oakland', nodeThreshold: 0.8, edgeThreshold: 0.98 },
  },
  nLayers: 2,
  merged: {
    nodes: [
      {
        key: 'token|0',
        kind: 'token',
        layer: -1,
        column: 0,
        a: side('E_5_0', 'token', 0, { label: 'x' }),
        b: side('E_5_0', 'token', 0, { label: 'x' }),
        status: 'same',
        change: 0,
      },
      {
        key: 'f0',
        kind: 'feature',
        layer: 0,
        column: 1,
        a: side('0_1_1', 'feature', 1, { activation: 2, influence: 0.3 }),
        b: null,
        status: 'only_a',
        change: 0,
      },
      // B's feature at its position 1 has the same id as A's: kept apart.
      {
        key: 'f1',
        kind: 'feature',
        layer: 0,
        column: 2,
        a: null,
        b: side('0_1_1', 'feature', 1, { activation: 1, influence: 0.4 }),
        status: 'only_b',
        change: 0,
      },
      {
        key: 'logit',
        kind: 'logit',
        layer: 3,
        column: 3,
        a: side('3_8_1', 'logit', 1, { token_prob: 0.2 }),
        b: side('3_8_2', 'logit', 2, { token_prob: 0.5 }),
        status: 'up',
        change: 0.3,
      },
    ],
    edges: [
      { source: 0, target: 1, weight_a: 0.5, weight_b: null },
      { source: 2, target: 3, weight_a: null, weight_b: 0.25 },
      { source: 0, target: 3, weight_a: 1, weight_b: 0.75 },
    ],
  },
} as unknown as TraceDiff;

describe('the merged graph of a diff', () => {
  it('column labels show substitutions, insertions and deletions', () => {
    expect(columnLabels(diff)).toEqual(['x', '− Dallas', '+ big', '+ Oakland']);
  });

  it('one view of both graphs: unique ids, refs into A or B, B − A edge weights, counts without tokens', () => {
    const m = mergedGraph(diff);
    expect(m.view.nodes.map((n) => n.id)).toEqual(['E_5_0', '0_1_1', 'B:0_1_1', '3_8_1']);
    expect(m.view.nodes.map((n) => n.position)).toEqual([0, 1, 2, 3]);
    expect(m.view.nPositions).toBe(4);
    expect(m.refs.get('B:0_1_1')).toEqual({ traceId: 9, nodeId: '0_1_1' });
    expect(m.refs.get('0_1_1')).toEqual({ traceId: 7, nodeId: '0_1_1' });
    expect(m.refs.get('3_8_1')).toEqual({ traceId: 7, nodeId: '3_8_1' });
    expect(m.sceneIdOfB.get('3_8_2')).toBe('3_8_1');
    expect(m.sceneIdOfB.get('0_1_1')).toBe('B:0_1_1');
    expect(Array.from(m.view.edges.weight)).toEqual([-0.5, 0.25, -0.25]);
    expect(m.view.nodes[3]).toMatchObject({ kind: 'logit', probability: 0.5 });
    expect(m.counts).toEqual({ only_a: 1, only_b: 1, up: 1, down: 0, same: 0 });
    expect(m.status.get('E_5_0')).toBe('same');
  });

  it('draws the same view from the merged edges packed (as the renderer asks for them)', () => {
    const packed = packMergedEdges(diff.merged!.edges);
    const viaWire: ClientDiff = {
      ...diff,
      merged: { nodes: diff.merged!.nodes, edges: [] },
      mergedEdges: unpackMergedEdges(packed, diff.merged!.nodes.length),
    };
    const a = mergedGraph(diff).view;
    const b = mergedGraph(viaWire).view;
    expect(b.nodes).toEqual(a.nodes);
    expect(Array.from(b.edges.source)).toEqual(Array.from(a.edges.source));
    expect(Array.from(b.edges.target)).toEqual(Array.from(a.edges.target));
    expect(Array.from(b.edges.weight)).toEqual(Array.from(a.edges.weight));
  });
});
