/**
 * Issue 14 item 7: an imported graph's layers × positions are bounded before anything is
 * allocated (the stored graph has an error node per pair), with a typed error.
 */
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../electron/api/errors.ts';
import { importedToStorable, MAX_IMPORT_LAYERS } from '../../electron/api/graph-json-io.ts';
import { importGraphJson } from '../../electron/engine/graph-json/import.ts';

/** A tiny graph: one feature at layer 0, one token, one logit at `logitLayer`. */
function graph(logitLayer: number): string {
  const node = (id: string, layer: string, ctx: number, type: string, extra: object = {}) => ({
    node_id: id,
    feature: 0,
    layer,
    ctx_idx: ctx,
    feature_type: type,
    jsNodeId: id,
    clerp: '',
    ...extra,
  });
  return JSON.stringify({
    metadata: { slug: 's', scan: 'm', transcoder_list: [], prompt_tokens: ['<bos>', 'a'], prompt: 'a' },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes: [
      node('0_5_1', '0', 1, 'cross layer transcoder', { activation: 1, influence: 0.5 }),
      node('E_9_1', 'E', 1, 'embedding'),
      node(`${logitLayer}_7_1`, String(logitLayer), 1, 'logit', {
        clerp: 'Output " x" (p=0.5)',
        token_prob: 0.5,
        is_target_logit: true,
      }),
    ],
    links: [
      { source: 'E_9_1', target: '0_5_1', weight: 1 },
      { source: '0_5_1', target: `${logitLayer}_7_1`, weight: 2 },
    ],
  });
}

describe('imported graph size bounds', () => {
  it('imports a small graph', () => {
    const g = importedToStorable(importGraphJson(graph(3)));
    expect(g.nodes.nLayers).toBe(2);
  });

  it.each([1_000_001, 999_999_999, MAX_IMPORT_LAYERS + 2])(
    'refuses logit layer %i with invalid_params, fast and without allocating it',
    (layer) => {
      const started = performance.now();
      let err: unknown;
      try {
        importedToStorable(importGraphJson(graph(layer)));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe('invalid_params');
      expect((err as ApiError).message).toMatch(/more than is imported/);
      expect(performance.now() - started).toBeLessThan(1000);
    },
  );
});
