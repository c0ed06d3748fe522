/**
 * How much memory a trace will need, estimated once the forward pass has told us how many
 * features are active, so an oversized job fails before the backward batches start.
 */
import os from 'node:os';
import { EngineError } from '../errors.ts';
import type { SourceSpace } from './sources.ts';

export interface TraceMemoryEstimate {
  bytes: number;
  parts: Record<string, number>;
}

export function estimateTraceMemory(
  space: SourceSpace,
  T: number,
  d: number,
  nLayers: number,
  rowsToCompute: number,
  nLogits: number,
  batchSize: number,
): TraceMemoryEstimate {
  const rows = (rowsToCompute + nLogits) * space.nColumns * 4;
  const N = rowsToCompute + nLayers * T + T + nLogits;
  const adjacency = N * N * 4;
  const sources = space.blocks.reduce((s, b) => s + b.vectors.byteLength + b.columns.byteLength, 0);
  // A backward batch holds a few [B, T, d] gradients per layer plus the [T, B, n] outputs.
  const batch =
    batchSize * T * d * 4 * 8 +
    space.blocks.reduce((s, b) => s + T * Math.min(batchSize, rowsToCompute + nLogits) * b.n * 4, 0);
  const parts = { rows, adjacency, sources, batch };
  return { bytes: rows + adjacency + sources + batch, parts };
}

export function assertFitsInMemory(
  est: TraceMemoryEstimate,
  maxFeatureNodes: number | undefined,
  limit?: number,
): void {
  const available = limit ?? os.totalmem() * 0.85 - process.memoryUsage().rss;
  if (est.bytes <= available) return;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const detail = Object.entries(est.parts)
    .map(([k, v]) => `${k} ${gib(v)}`)
    .join(', ');
  throw new EngineError(
    'resources',
    `this trace needs about ${gib(est.bytes)} (${detail}) but about ${gib(available)} is available; ` +
      `lower --max-feature-nodes${maxFeatureNodes ? ` (now ${maxFeatureNodes})` : ' (now: all active features)'} or --batch-size`,
    { field: 'max_feature_nodes' },
  );
}
