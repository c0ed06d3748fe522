/** Interventions, the pure part: draft rows, validation, API input, prediction rows, highlight. */
import { describe, expect, it } from 'vitest';
import type { GraphView, InterventionOutcome } from '../api/types.ts';
import {
  type DraftOptions,
  type DraftRow,
  defaultValue,
  draftProblems,
  draftRows,
  duplicateRow,
  editText,
  highlightCounts,
  interventionHighlight,
  interventionInput,
  mergeRows,
  parseNodeId,
  predictionRows,
  relativeChange,
} from './intervention.ts';
import type { Scene } from './scene.ts';
import { withHighlight } from './scene.ts';
import { COLORS, changeColor, mixHex } from './style.ts';
import { viewNode } from './testing.ts';

const node = viewNode;

/** 2 layers, prompt "<bos> The cat" (T = 3); logits sit at layer 3 (nLayers + 1). */
const view: Pick<GraphView, 'nodes' | 'nLayers' | 'promptTokens'> = {
  nLayers: 2,
  promptTokens: ['<bos>', ' The', ' cat'],
  nodes: [
    node({ id: 'E_9_1', kind: 'token', layer: -1, position: 1, index: 9, token: ' The' }),
    node({ id: '0_10_1', kind: 'feature', layer: 0, position: 1, index: 10, activation: 2, label: 'the' }),
    node({ id: '1_3_2', kind: 'feature', layer: 1, position: 2, index: 3, activation: 4 }),
    node({ id: '1_-1_2', kind: 'error', layer: 1, position: 2 }),
    node({ id: '3_40_2', kind: 'logit', layer: 3, position: 2, index: 40, probability: 0.7, token: ' sat' }),
    node({ id: '3_41_2', kind: 'logit', layer: 3, position: 2, index: 41, probability: 0.2, token: ' is' }),
  ],
};

const OPTS: DraftOptions = { loop: 'closed', freezeAttention: false, generate: 0, top: 10, label: '' };

describe('parseNodeId', () => {
  it('tells features, errors, tokens and logits apart', () => {
    expect(parseNodeId('2_117_5', 4)).toEqual({ kind: 'feature', layer: 2, index: 117, position: 5 });
    expect(parseNodeId('2_-1_5', 4)).toMatchObject({ kind: 'error', layer: 2 });
    expect(parseNodeId('E_651_1', 4)).toEqual({ kind: 'token', layer: -1, index: 651, position: 1 });
    expect(parseNodeId('5_3290_6', 4)).toMatchObject({ kind: 'logit', index: 3290 });
    expect(parseNodeId('supernode:0', 4)).toBeNull();
    expect(parseNodeId('2_x_5', 4)).toBeNull();
  });
});

describe('draftRows', () => {
  it('makes one ablate row per feature node and skips the others with a reason', () => {
    const { rows, skipped } = draftRows(['0_10_1', 'E_9_1', '1_3_2', '1_-1_2', '3_40_2', '0_10_1'], view);
    expect(rows.map((r) => [r.nodeId, r.layer, r.feature, r.position, r.mode, r.activation])).toEqual([
      ['0_10_1', 0, 10, 1, 'ablate', 2],
      ['1_3_2', 1, 3, 2, 'ablate', 4],
    ]);
    expect(rows[0].label).toBe('the');
    expect(new Set(rows.map((r) => r.key)).size).toBe(2);
    expect(skipped.map((s) => [s.id, s.kind])).toEqual([
      ['E_9_1', 'token'],
      ['1_-1_2', 'error'],
      ['3_40_2', 'logit'],
    ]);
    for (const s of skipped) expect(s.reason.length).toBeGreaterThan(10);
  });

  it('parses ids the view does not hold (pins pruned away) and skips what it cannot read', () => {
    const { rows, skipped } = draftRows(['1_77_2', '3_99_2', 'supernode:1'], view);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ layer: 1, feature: 77, position: 2, activation: null });
    expect(skipped.map((s) => s.kind)).toEqual(['logit', 'unknown']);
  });

  it('merges without doubling a feature at a position, and duplicates a row to a free position', () => {
    const a = draftRows(['0_10_1'], view).rows;
    const b = draftRows(['0_10_1', '1_3_2'], view).rows;
    const merged = mergeRows(a, b);
    expect(merged.map((r) => r.nodeId)).toEqual(['0_10_1', '1_3_2']);
    const dup = duplicateRow(merged, merged[0].key, 3);
    expect(dup.map((r) => [r.nodeId, r.position])).toEqual([
      ['0_10_1', 1],
      ['0_10_1', 2],
      ['1_3_2', 2],
    ]);
    expect(dup[1].key).not.toBe(dup[0].key);
  });
});

describe('draft validation and input', () => {
  const rows = (): DraftRow[] => draftRows(['0_10_1', '1_3_2'], view).rows;

  it('fills sensible values when the mode changes', () => {
    const r = rows()[1];
    expect(defaultValue(r, 'ablate')).toBeNull();
    expect(defaultValue(r, 'scale')).toBe(2);
    expect(defaultValue(r, 'set')).toBe(8);
    expect(defaultValue({ ...r, mode: 'scale', value: 0 }, 'scale')).toBe(0);
  });

  it('flags missing values, BOS or out-of-prompt positions, duplicates and bad options', () => {
    const rs = rows();
    expect(draftProblems(rs, OPTS, 3)).toEqual({ rows: {}, general: [] });
    rs[0].mode = 'scale';
    rs[0].value = null;
    rs[1].position = 0;
    let p = draftProblems(rs, OPTS, 3);
    expect(p.rows[rs[0].key]).toMatch(/factor/);
    expect(p.rows[rs[1].key]).toMatch(/position/);
    rs[0].value = 0;
    rs[1] = { ...rs[0], key: 'other' };
    p = draftProblems(rs, OPTS, 3);
    expect(p.rows.other).toMatch(/twice/);
    expect(draftProblems([], OPTS, 3).general).toHaveLength(1);
    expect(draftProblems(rows(), { ...OPTS, top: 0 }, 3).general[0]).toMatch(/Top K/);
    expect(draftProblems(rows(), { ...OPTS, generate: 4, freezeAttention: true }, 3).general[0]).toMatch(
      /frozen/,
    );
    // Open loop ignores the closed-loop-only options.
    expect(
      draftProblems(rows(), { ...OPTS, loop: 'open', generate: 4, freezeAttention: true }, 3).general,
    ).toEqual([]);
  });

  it('builds the API input (closed-loop options only for the closed loop, value only when used)', () => {
    const rs = rows();
    rs[1].mode = 'scale';
    rs[1].value = 0.5;
    expect(interventionInput(7, rs, { ...OPTS, generate: 3, label: '  my run ' })).toEqual({
      traceId: 7,
      edits: [
        { layer: 0, feature: 10, position: 1, mode: 'ablate' },
        { layer: 1, feature: 3, position: 2, mode: 'scale', value: 0.5 },
      ],
      loop: 'closed',
      freezeAttention: false,
      generate: 3,
      top: 10,
      label: 'my run',
    });
    const open = interventionInput(7, rs, { ...OPTS, loop: 'open', generate: 3, freezeAttention: true });
    expect(open).not.toHaveProperty('generate');
    expect(open).not.toHaveProperty('freezeAttention');
    expect(open).not.toHaveProperty('label');
    expect(editText({ mode: 'scale', value: 0.5 })).toBe('×0.5');
    expect(editText({ mode: 'set', value: 3 })).toBe('= 3');
  });
});

const outcome = (): InterventionOutcome => ({
  loop: 'closed',
  predictions: [
    { tokenId: 41, token: ' is', probBefore: 0.2, probAfter: 0.5, logitBefore: 1, logitAfter: 2 },
    { tokenId: 40, token: ' sat', probBefore: 0.7, probAfter: 0.25, logitBefore: 3, logitAfter: 1.5 },
    { tokenId: 42, token: ' ran', probBefore: 0.01, probAfter: 0.1, logitBefore: -1, logitAfter: 0.5 },
  ],
  topBefore: [40, 41],
  topAfter: [41, 40],
  featureChanges: [
    {
      nodeId: '0_10_1',
      layer: 0,
      feature: 10,
      position: 1,
      quantity: 'activation',
      before: 2,
      after: 0,
      inGraph: true,
      edited: true,
    },
    {
      nodeId: '1_3_2',
      layer: 1,
      feature: 3,
      position: 2,
      quantity: 'activation',
      before: 4,
      after: 1,
      inGraph: true,
      edited: false,
    },
    {
      nodeId: '1_8_2',
      layer: 1,
      feature: 8,
      position: 2,
      quantity: 'activation',
      before: 0,
      after: 0.5,
      inGraph: false,
      edited: false,
    },
  ],
  logitChanges: [
    { tokenId: 40, token: ' sat', before: 2, after: 0.5, delta: -1.5 },
    { tokenId: 41, token: ' is', before: 0.1, after: 1.1, delta: 1 },
    { tokenId: 43, token: ' was', before: 1, after: 2, delta: 1 },
  ],
  generated: [],
  timingsMs: {},
});

describe('predictionRows', () => {
  it('gives before/after/change with bars relative to the largest probability, sortable', () => {
    const rows = predictionRows(outcome());
    expect(rows.map((r) => r.token)).toEqual([' is', ' sat', ' ran']);
    const sat = rows[1];
    expect(sat.delta).toBeCloseTo(-0.45, 12);
    expect(sat.barBefore).toBeCloseTo(1, 12);
    expect(sat.barAfter).toBeCloseTo(0.25 / 0.7, 12);
    expect(sat.barDelta).toBeCloseTo(1, 12);
    expect([sat.rankBefore, sat.rankAfter]).toEqual([1, 2]);
    expect(rows[2].rankBefore).toBeNull();
    expect(predictionRows(outcome(), 'before').map((r) => r.token)).toEqual([' sat', ' is', ' ran']);
    expect(predictionRows(outcome(), 'change')[0].token).toBe(' sat');
  });
});

describe('interventionHighlight', () => {
  it('colours features by activation change and logits by probability change', () => {
    const hl = interventionHighlight(outcome(), view);
    expect(hl.get('0_10_1')).toMatchObject({ direction: 'fell', intensity: 1, edited: true });
    expect(hl.get('1_3_2')).toMatchObject({ direction: 'fell', edited: false });
    expect(hl.get('1_3_2')?.intensity).toBeCloseTo(0.75, 12);
    expect(hl.get('1_8_2')).toMatchObject({ direction: 'rose', intensity: 1 });
    expect(hl.get('3_40_2')).toMatchObject({ direction: 'fell', quantity: 'probability', before: 0.7 });
    expect(hl.get('3_41_2')).toMatchObject({ direction: 'rose', quantity: 'probability' });
    expect(hl.has('E_9_1')).toBe(false);
    // A logit target outside the top lists: by its logit.
    const v2 = { nodes: [...view.nodes, node({ id: '3_43_2', kind: 'logit', index: 43, token: ' was' })] };
    expect(interventionHighlight(outcome(), v2).get('3_43_2')).toMatchObject({
      direction: 'rose',
      quantity: 'logit',
      intensity: 0.5,
    });
    expect(highlightCounts(hl, ['0_10_1', '1_3_2', '3_40_2', '3_41_2', 'E_9_1'])).toEqual({
      rose: 1,
      fell: 2,
      edited: 1,
    });
    expect(relativeChange(0, 0)).toBe(0);
    expect(relativeChange(1, 1.005)).toBeLessThan(0.01);
  });

  it('colours an open-loop result by the direct change of the features’ inputs', () => {
    const o = {
      ...outcome(),
      loop: 'open' as const,
      featureChanges: [
        {
          nodeId: '1_3_2',
          layer: 1,
          feature: 3,
          position: 2,
          quantity: 'input' as const,
          before: 2,
          after: 0.5,
          inGraph: true,
          edited: false,
        },
      ],
    };
    const hl = interventionHighlight(o, view, [{ layer: 0, feature: 10, position: 1, mode: 'ablate' }]);
    expect(hl.get('1_3_2')).toMatchObject({ quantity: 'input', direction: 'fell', before: 2, after: 0.5 });
    expect(hl.get('0_10_1')).toMatchObject({ edited: true, quantity: 'activation', after: 0 });
  });

  it('marks the edits of an open-loop result, which lists no feature changes', () => {
    const o = { ...outcome(), loop: 'open' as const, featureChanges: [] };
    const hl = interventionHighlight(o, view, [
      { layer: 1, feature: 3, position: 2, mode: 'scale', value: 0.5 },
      { layer: 0, feature: 10, position: 1, mode: 'ablate' },
    ]);
    expect(hl.get('1_3_2')).toMatchObject({ edited: true, before: 4, after: 2, direction: 'fell' });
    expect(hl.get('0_10_1')).toMatchObject({ edited: true, before: 2, after: 0 });
  });
});

describe('withHighlight', () => {
  const scene = (): Scene => ({
    nodes: ['E_9_1', '0_10_1', '1_3_2', '1_-1_2', '3_40_2', '3_41_2'].map((id) => {
      const n = view.nodes.find((m) => m.id === id)!;
      return {
        id,
        kind: n.kind,
        x: 0,
        y: 0,
        size: 5,
        glyph: 'circle' as const,
        color: COLORS[n.kind],
        label: n.id,
        labelMode: 'auto' as const,
        labelPos: 'right' as const,
      };
    }),
    edges: [],
    frame: { width: 1, height: 1, bbox: { x: [0, 1], y: [0, 1] } },
    columns: [],
    rows: [],
    title: '',
  });

  it('recolours changed features and logits, greys the rest, keeps tokens and errors', () => {
    const s = scene();
    expect(withHighlight(s, null)).toBe(s);
    const hl = new Map(interventionHighlight(outcome(), view));
    hl.delete('1_3_2');
    const out = withHighlight(s, hl, view);
    const color = (id: string) => out.nodes.find((n) => n.id === id)?.color;
    expect(color('0_10_1')).toBe(COLORS.edited);
    expect(color('1_3_2')).toBe(COLORS.unchanged);
    expect(color('3_40_2')).toBe(changeColor({ direction: 'fell', intensity: 0.45 / 0.7, edited: false }));
    expect(color('E_9_1')).toBe(COLORS.token);
    expect(color('1_-1_2')).toBe(COLORS.error);
    expect(out.nodes.find((n) => n.id === '3_40_2')?.label).toBe('" sat" 70%→25%');
    // The input scene is not changed (the pane keeps its own copy).
    expect(s.nodes.find((n) => n.id === '0_10_1')?.color).toBe(COLORS.feature);
  });

  it('mixes colours from pale to strong with the change', () => {
    expect(mixHex('#000000', '#ffffff', 0)).toBe('#000000');
    expect(mixHex('#000000', '#ffffff', 1)).toBe('#ffffff');
    expect(mixHex('#000000', '#ffffff', 0.5)).toBe('#808080');
    expect(changeColor({ direction: 'rose', intensity: 1, edited: false })).toBe(COLORS.rose);
    expect(changeColor({ direction: 'fell', intensity: 0, edited: false })).toBe(COLORS.fellPale);
    expect(changeColor({ direction: 'same', intensity: 0, edited: false })).toBe(COLORS.unchanged);
  });
});
