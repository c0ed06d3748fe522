/** Automatic feature labels from dashboards: read from SQLite, applied to a view's features. */
import { afterEach, describe, expect, it } from 'vitest';
import type { GraphView, ViewNode } from '../../electron/api/contract.ts';
import { applyAutoLabels, autoFeatureLabel } from '../../electron/api/view.ts';
import type { FeatureRecord } from '../../electron/engine/dashboards/types.ts';
import { Store } from '../../electron/store/store.ts';
import { tempDir } from '../store/helpers.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function dashboard(layer: number, index: number, maxTokens: string[], topLogits: string[]): FeatureRecord {
  return {
    index,
    layer,
    feature: 0,
    examples_quantiles: [
      {
        quantile_name: 'Top activations',
        examples: maxTokens.map((t, i) => ({
          tokens: ['<bos>', 'x', t, 'y'].slice(0, 2 + (i % 2) + 1),
          tokens_acts_list: [0, 0, 5, 0],
          train_token_ind: 2,
          is_repeated_datapoint: false,
        })),
      },
    ],
    top_logits: topLogits,
    bottom_logits: [],
    act_min: 0,
    act_max: 5,
    quantile_values: [],
    histogram: null,
    activation_frequency: 0.01,
  } as unknown as FeatureRecord;
}

describe('autoFeatureLabel', () => {
  it('names a feature by its most frequent top-activation tokens, then its top logit', () => {
    expect(
      autoFeatureLabel({
        topTokens: [' Dallas', ' Texas', ' Dallas', ' Houston', ' Texas', ' Dallas', 'x'],
        topLogits: [' Austin', ' TX'],
      }),
    ).toBe('Dallas · Texas · Houston → Austin');
    expect(autoFeatureLabel({ topTokens: ['\n', '  '], topLogits: [' ', ' Austin'] })).toBe('⏎ → Austin');
    expect(autoFeatureLabel({ topTokens: [], topLogits: [' Austin'] })).toBe('→ Austin');
    expect(autoFeatureLabel({ topTokens: [' a'], topLogits: [] })).toBe('a');
    expect(autoFeatureLabel({ topTokens: [], topLogits: [] })).toBe('');
    expect(autoFeatureLabel({ topTokens: ['x'.repeat(60)], topLogits: [] })).toHaveLength(34);
  });

  it('reads digests from the stored dashboards and labels only the features that have one', () => {
    const tmp = tempDir('cw-autolabel-');
    const store = Store.open(tmp.dir);
    cleanups.push(() => {
      store.close();
      tmp.cleanup();
    });
    const set = store.models.ensureTranscoderSet({
      contentHash: 'h',
      dir: '/t',
      kind: 'plt',
      nLayers: 4,
      dModel: 8,
      dTranscoder: 16,
    });
    store.features.putDashboards(set.id, [
      { layer: 2, index: 7, dashboard: dashboard(2, 7, [' Dallas', ' Dallas', ' Texas'], [' Austin']) },
      { layer: 3, index: 1, dashboard: dashboard(3, 1, [], [' Paris']) },
    ]);
    store.features.setLabel(set.id, 1, 1, 'only a user label');
    const digests = store.features.dashboardDigests(set.id, [
      { layer: 2, index: 7 },
      { layer: 3, index: 1 },
      { layer: 1, index: 1 },
      { layer: 0, index: 9 },
    ]);
    expect([...digests.keys()].sort()).toEqual(['2:7', '3:1']);
    expect(digests.get('2:7')).toEqual({
      topTokens: [' Dallas', ' Dallas', ' Texas'],
      topLogits: [' Austin'],
    });
    const node = (id: string, layer: number, index: number, label = ''): ViewNode => ({
      id,
      kind: 'feature',
      layer,
      position: 0,
      index,
      activation: 1,
      influence: 0.1,
      probability: null,
      token: null,
      label,
    });
    const view = {
      nodes: [
        node('2_7_0', 2, 7),
        node('3_1_4', 3, 1, 'user says'),
        node('1_1_0', 1, 1),
        node('0_9_0', 0, 9),
      ],
    } as GraphView;
    applyAutoLabels(view, digests);
    expect(view.nodes.map((n) => n.autoLabel)).toEqual([
      'Dallas · Texas → Austin',
      '→ Paris',
      undefined,
      undefined,
    ]);
    // the user's label is kept as the label (it wins where shown)
    expect(view.nodes[1].label).toBe('user says');
  });
});
