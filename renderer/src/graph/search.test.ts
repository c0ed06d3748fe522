/** Node search finds nodes by the researcher's notes as well as ids, labels and tokens. */
import { describe, expect, it } from 'vitest';
import type { GraphView, ViewNode } from '../api/types.ts';
import { searchNodes } from './search.ts';

const node = (id: string, layer: number, index: number, position: number, label = ''): ViewNode => ({
  id,
  kind: 'feature',
  layer,
  position,
  index,
  activation: 1,
  influence: 0.5,
  probability: null,
  token: null,
  label,
});

const view = {
  nodes: [node('0_491_6', 0, 491, 6), node('1_263_7', 1, 263, 7, 'say a capital'), node('2_5_7', 2, 5, 7)],
} as unknown as GraphView;

describe('searchNodes', () => {
  it('matches notes, case-insensitively, below exact label and token matches', () => {
    const notes = { '0_491_6': 'Looks like a Texas detector', '2_5_7': '' };
    expect(searchNodes(view, 'texas', 30, notes).map((h) => h.node.id)).toEqual(['0_491_6']);
    expect(searchNodes(view, 'texas', 30)).toEqual([]);
    // a label match ranks above a note match
    const both = searchNodes(view, 'capital', 30, { '2_5_7': 'another capital?' }).map((h) => h.node.id);
    expect(both).toEqual(['1_263_7', '2_5_7']);
  });
});
