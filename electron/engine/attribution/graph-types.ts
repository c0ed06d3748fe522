/**
 * The raw (unpruned) attribution graph: a node table and the dense adjacency in
 * circuit-tracer's layout (attribution.md §4):
 *
 *   rows = targets, columns = sources, N = nFeatures + nLayers·T + T + nLogits
 *   order: [ selected features | errors (layer-major, l·T + p) | tokens | logits ]
 *
 * Error and token rows are zero (they are never targets); logit columns are zero (logits
 * are never sources). A[t, s] is the change in target t's pre-activation caused by source
 * s through the frozen linear model.
 */
export interface FeatureNodes {
  /** Selected features, ordered by (layer, position, index). */
  layer: Int32Array;
  position: Int32Array;
  index: Int32Array;
  activation: Float32Array;
}

export interface LogitNodes {
  /** Output tokens at the last position, ordered by probability, descending. */
  tokenId: Int32Array;
  probability: Float32Array;
  /** The token strings (e.g. ' Austin'), for labels. */
  token: string[];
}

export interface AttributionNodes {
  nLayers: number;
  /** Prompt length including BOS. */
  nPositions: number;
  promptTokenIds: Int32Array;
  promptTokens: string[];
  features: FeatureNodes;
  logits: LogitNodes;
}

export interface RawAttributionGraph {
  nodes: AttributionNodes;
  /** [N, N] row-major float32. */
  adjacency: Float32Array;
}

/** Offsets of each block in the node order. */
export interface NodeLayout {
  nFeatures: number;
  nErrors: number;
  nTokens: number;
  nLogits: number;
  errorOffset: number;
  tokenOffset: number;
  logitOffset: number;
  total: number;
}

export function nodeLayout(nodes: AttributionNodes): NodeLayout {
  const nFeatures = nodes.features.layer.length;
  const nErrors = nodes.nLayers * nodes.nPositions;
  const nTokens = nodes.nPositions;
  const nLogits = nodes.logits.tokenId.length;
  return {
    nFeatures,
    nErrors,
    nTokens,
    nLogits,
    errorOffset: nFeatures,
    tokenOffset: nFeatures + nErrors,
    logitOffset: nFeatures + nErrors + nTokens,
    total: nFeatures + nErrors + nTokens + nLogits,
  };
}
