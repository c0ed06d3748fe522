/**
 * How much memory a trace will need, so an oversized one is refused before any backward
 * batch runs: once before the forward pass (from the prompt length alone: the forward cache
 * and the smallest possible graph) and once after it, when the number of active features
 * and the source space are known.
 *
 * Counted, in bytes (float32 = 4):
 *  - feature rows: 4 · (rows + logits) · columns — every computed row spans the whole source
 *    column space (all active features, errors, tokens) until the graph is assembled, and it
 *    stays with the result;
 *  - adjacency: 4 · N², N = rows + L·T errors + T tokens + logits (one typed array: N² must
 *    also be at most 2³² entries);
 *  - source blocks: the [T, d, n_m] source vectors per write layer (resident from the forward
 *    on);
 *  - forward cache: the frozen attention patterns (4 · L·H·T²), transcoder pre-activations
 *    (4 · T · d_t per layer) and the residual-sized arrays;
 *  - backward batches: a dozen [B, T, d] gradients and their gathered copies, the [B, t, n_m] outputs, the
 *    B·columns row buffer, and the runner's copies of the patterns cut to each batch's
 *    position count;
 *  - pruning and output: O(N) float64 vectors and about 40 bytes per kept edge (the cut's
 *    lists, the pruned graph's, graph JSON links); kept edges are at most the nonzero entries
 *    of the node-pruned matrix, taken as half the nodes with a quarter of the entries nonzero
 *    (attribution rows are sparse: a tenth of the entries on the demo model), and pruning
 *    checks the real count before allocating; plus the library's compressed rows (8 bytes
 *    per nonzero, same density) when the graph is stored.
 *
 * The limit is most of the machine's memory minus what the process already holds, and at most
 * 90% of what is free now, or
 * `memoryLimitBytes`, or the environment variable CIRCUIT_MEMORY_LIMIT_BYTES (bytes a trace
 * may add; tests and shared machines).
 */
import os from 'node:os';
import { MAX_TYPED_ARRAY_LENGTH } from '../checkpoint/file-reader.ts';
import { EngineError } from '../errors.ts';
import { graphNodeCount } from './assemble.ts';

export interface TraceMemoryEstimate {
  /** Bytes still to allocate. */
  bytes: number;
  /** Bytes already held for this trace (forward cache, source blocks), for the message. */
  residentBytes: number;
  parts: Record<string, number>;
  /** Nodes of the graph. */
  nodes: number;
}

export interface TraceShape {
  /** Prompt length, BOS included. */
  T: number;
  d: number;
  nLayers: number;
  nHeads: number;
  /** Transcoder width per layer. */
  dTranscoder: readonly number[];
  nLogits: number;
  batchSize: number;
  /** The caller keeps the graph as CSR too (the library). */
  storesGraph?: boolean;
}

export interface SourceShape {
  nActive: number;
  /** Active features + L·T errors + T tokens. */
  nColumns: number;
  /** Bytes of the source blocks. */
  sourceBytes: number;
  /** Columns per position of each write layer's block. */
  blockWidths: readonly number[];
}

const F32 = 4;
/** Bytes per kept edge through pruning and output (see pruning/prune.ts). */
export const KEPT_EDGE_BYTES = 40;
/** Fraction of the adjacency's possible entries taken as nonzero. */
const ASSUMED_DENSITY = 0.25;

/** The forward cache's arrays for a prompt of T tokens. */
function forwardCacheBytes(s: TraceShape): number {
  const { T, d, nLayers: L, nHeads: H } = s;
  const patterns = L * H * T * T * F32;
  const pre = s.dTranscoder.reduce((sum, dt) => sum + T * dt * F32, 0);
  // read inputs, errors, norm scales, token vectors: about 4 [T, d] per layer
  return patterns + pre + 4 * L * T * d * F32;
}

/**
 * The trace's memory once the source space is known (`src`), or before the forward pass
 * (`src` undefined: no features yet, so a lower bound of what the trace needs).
 */
export function estimateTraceMemory(
  s: TraceShape,
  rowsToCompute: number,
  src?: SourceShape,
): TraceMemoryEstimate {
  const { T, d, nLayers: L, nHeads: H, nLogits: K } = s;
  const rows = src ? rowsToCompute : 0;
  const columns = src ? src.nColumns : L * T + T;
  const N = graphNodeCount(rows, L, T, K);
  const adjacency = N * N * F32;
  const featureRows = (rows + K) * columns * F32;
  const B = Math.max(1, Math.min(s.batchSize, rows + K));
  const widths = src ? src.blockWidths : new Array<number>(L).fill(1);
  const nBatches = Math.ceil(rows / s.batchSize) + 1;
  const batch =
    // gradients at every layer's hooks (ONNX Runtime's working set), and live positions' gathered
    // copies of them around the projections (linear-model.ts BackwardPositions: 4 more)
    B * T * d * F32 * 12 +
    widths.reduce((sum, n) => sum + B * T * n * F32, 0) + // [B, t, n] outputs
    B * columns * F32 + // the rows being filled
    // patterns cut to each batch's positions (one copy per distinct position count, about T²/3 each)
    Math.min(nBatches, T) * L * H * ((T * T) / 3) * F32;
  const entries = (rows + K) * N; // adjacency entries that can be nonzero
  const pruning =
    N * 8 * 16 + // influence, scales, rankings, degrees
    KEPT_EDGE_BYTES * ASSUMED_DENSITY * Math.min(entries, (N / 2) ** 2) + // kept edges
    (s.storesGraph ? 8 * ASSUMED_DENSITY * entries : 0); // CSR of the stored graph
  const resident = (src ? src.sourceBytes : 0) + forwardCacheBytes(s);
  const parts: Record<string, number> = {
    'feature rows': featureRows,
    adjacency,
    'backward batches': batch,
    'pruning and output': pruning,
  };
  if (!src) parts['forward cache'] = resident; // not allocated yet
  const bytes = featureRows + adjacency + batch + pruning + (src ? 0 : resident);
  return { bytes, residentBytes: src ? resident : 0, parts, nodes: N };
}

/** Bytes a trace may still allocate. */
export function availableBytes(limit?: number): number {
  if (limit !== undefined) return limit;
  const env = Number(process.env.CIRCUIT_MEMORY_LIMIT_BYTES);
  if (process.env.CIRCUIT_MEMORY_LIMIT_BYTES && Number.isFinite(env) && env >= 0) return env;
  // most of the machine less what this process holds, and no more than is free now (other
  // processes count too; os.freemem() is the kernel's available memory)
  return Math.min(os.totalmem() * 0.85 - process.memoryUsage.rss(), os.freemem() * 0.9);
}

export function formatBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  return `${(b / 2 ** 10).toFixed(1)} KiB`;
}

/**
 * Throws EngineError('resources') when the estimate does not fit in the available memory, or
 * when the adjacency would exceed one typed array, naming the memory needed and the flag
 * that lowers it.
 */
export function assertFitsInMemory(
  est: TraceMemoryEstimate,
  maxFeatureNodes: number,
  activeFeatures: number | undefined,
  limit?: number,
): void {
  const cap =
    activeFeatures !== undefined && maxFeatureNodes >= activeFeatures
      ? `now ${maxFeatureNodes}: all ${activeFeatures} active features`
      : `now ${maxFeatureNodes}`;
  const fix =
    activeFeatures === undefined
      ? `shorten the prompt: this is before any feature node (lowering --max-feature-nodes, ${cap}, does not help)`
      : `lower --max-feature-nodes (${cap})`;
  if (est.nodes * est.nodes > MAX_TYPED_ARRAY_LENGTH) {
    throw new EngineError(
      'resources',
      `the graph would have ${est.nodes} nodes, and its ${est.nodes}×${est.nodes} adjacency is more than one array holds (${MAX_TYPED_ARRAY_LENGTH} entries, at most ${Math.floor(Math.sqrt(MAX_TYPED_ARRAY_LENGTH))} nodes); ${fix}`,
      { field: 'max_feature_nodes' },
    );
  }
  const available = availableBytes(limit);
  if (est.bytes <= available) return;
  const detail = Object.entries(est.parts)
    .map(([k, v]) => `${k} ${formatBytes(v)}`)
    .join(', ');
  const held = est.residentBytes > 0 ? ` on top of ${formatBytes(est.residentBytes)} already held` : '';
  throw new EngineError(
    'resources',
    `this trace needs about ${formatBytes(est.bytes)} more memory (${detail})${held}, but about ${formatBytes(Math.max(0, available))} is available; ${fix}`,
    { field: 'max_feature_nodes' },
  );
}
