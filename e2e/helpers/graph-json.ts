/**
 * A small hand-written graph in circuit-tracer's JSON format (attribution.md §6), with a
 * hostile label to check that imported text is shown as text, never as HTML.
 */
export const HOSTILE_LABEL = '<img src=x onerror="window.__pwned=1">cat detector';

export function circuitTracerJson(): string {
  const feature = (
    layer: number,
    idx: number,
    pos: number,
    influence: number,
    activation: number,
    clerp = '',
  ) => ({
    node_id: `${layer}_${idx}_${pos}`,
    feature: ((layer + idx) * (layer + idx + 1)) / 2 + idx,
    layer: String(layer),
    ctx_idx: pos,
    feature_type: 'cross layer transcoder',
    jsNodeId: `${layer}_${idx}-0`,
    clerp,
    influence,
    activation,
  });
  const nodes = [
    {
      node_id: 'E_2_0',
      feature: 2,
      layer: 'E',
      ctx_idx: 0,
      feature_type: 'embedding',
      jsNodeId: 'E_2-0',
      clerp: '',
    },
    {
      node_id: 'E_651_1',
      feature: 651,
      layer: 'E',
      ctx_idx: 1,
      feature_type: 'embedding',
      jsNodeId: 'E_651-1',
      clerp: '',
    },
    {
      node_id: 'E_7385_2',
      feature: 7385,
      layer: 'E',
      ctx_idx: 2,
      feature_type: 'embedding',
      jsNodeId: 'E_7385-2',
      clerp: '',
    },
    feature(0, 12, 1, 0.2, 3.1, 'the-token'),
    feature(0, 40, 2, 0.3, 2.2, HOSTILE_LABEL),
    feature(1, 7, 2, 0.45, 1.7),
    feature(2, 99, 2, 0.6, 4.0, 'says-animal'),
    {
      node_id: '2_-1_2',
      feature: -1,
      layer: '2',
      ctx_idx: 2,
      feature_type: 'mlp reconstruction error',
      jsNodeId: '2_2-0',
      clerp: '',
      influence: 0.7,
    },
    {
      node_id: '4_3290_2',
      feature: 3290,
      layer: '4',
      ctx_idx: 2,
      feature_type: 'logit',
      token_prob: 0.71,
      is_target_logit: true,
      jsNodeId: 'L_3290-2',
      clerp: 'Output " sat" (p=0.710)',
    },
    {
      node_id: '4_1142_2',
      feature: 1142,
      layer: '4',
      ctx_idx: 2,
      feature_type: 'logit',
      token_prob: 0.12,
      is_target_logit: false,
      jsNodeId: 'L_1142-2',
      clerp: 'Output " is" (p=0.120)',
    },
  ];
  const links = [
    { source: 'E_651_1', target: '0_12_1', weight: 2.5 },
    { source: 'E_7385_2', target: '0_40_2', weight: 3.0 },
    { source: '0_12_1', target: '1_7_2', weight: 1.2 },
    { source: '0_40_2', target: '1_7_2', weight: 0.8 },
    { source: '1_7_2', target: '2_99_2', weight: 1.9 },
    { source: '0_40_2', target: '2_99_2', weight: -0.6 },
    { source: '2_99_2', target: '4_3290_2', weight: 2.2 },
    { source: '2_-1_2', target: '4_3290_2', weight: 0.4 },
    { source: '2_99_2', target: '4_1142_2', weight: -0.9 },
    { source: 'E_7385_2', target: '4_1142_2', weight: 0.5 },
  ];
  return JSON.stringify({
    metadata: {
      slug: 'the-cat-sat',
      scan: 'hand-made',
      prompt_tokens: ['<bos>', ' The', ' cat'],
      prompt: 'The cat',
      node_threshold: 0.8,
      schema_version: 1,
      transcoder_list: [],
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes,
    links,
  });
}
