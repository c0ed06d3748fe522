/**
 * The trace memory estimate (memory-estimate.ts): what it counts, and the refusals it makes
 * (EngineError 'resources' naming the memory and --max-feature-nodes) before the forward pass
 * and before the backward batches; an adjacency past one typed array is refused whatever the
 * memory.
 */
import { describe, expect, it } from 'vitest';
import {
  assertFitsInMemory,
  estimateTraceMemory,
  type SourceShape,
  type TraceShape,
} from '../../../electron/engine/attribution/memory-estimate.ts';
import { MAX_TYPED_ARRAY_LENGTH } from '../../../electron/engine/checkpoint/file-reader.ts';
import { EngineError } from '../../../electron/engine/errors.ts';

/** gemma-2-2b with GemmaScope transcoders, a 400-token prompt. */
const gemma: TraceShape = {
  T: 400,
  d: 2304,
  nLayers: 26,
  nHeads: 8,
  dTranscoder: new Array(26).fill(16384),
  nLogits: 10,
  batchSize: 256,
};
const active = 26 * 399 * 30; // about 30 active per token and layer
const src: SourceShape = {
  nActive: active,
  nColumns: active + 26 * 400 + 400,
  sourceBytes: 26 * 400 * 2304 * 31 * 4,
  blockWidths: new Array(26).fill(31),
};

function refusal(f: () => void): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe('resources');
    return e as EngineError;
  }
  throw new Error('expected a refusal');
}

describe('trace memory estimate', () => {
  it('counts the feature rows over the whole column space and the N² adjacency', () => {
    const e = estimateTraceMemory(gemma, 7500, src);
    const N = 7500 + 26 * 400 + 400 + 10;
    expect(e.nodes).toBe(N);
    expect(e.parts.adjacency).toBe(4 * N * N);
    expect(e.parts['feature rows']).toBe(4 * (7500 + 10) * src.nColumns);
    expect(e.residentBytes).toBeGreaterThan(src.sourceBytes); // + the forward cache
    expect(e.bytes).toBe(Object.values(e.parts).reduce((s, x) => s + x, 0));
    // storing the graph (the library) adds its compressed rows
    expect(estimateTraceMemory({ ...gemma, storesGraph: true }, 7500, src).bytes).toBeGreaterThan(e.bytes);
    // more rows, more memory; all 311k active features would need hundreds of GiB
    expect(estimateTraceMemory(gemma, 8192, src).bytes).toBeGreaterThan(e.bytes);
    expect(estimateTraceMemory(gemma, active, src).bytes).toBeGreaterThan(400 * 2 ** 30);
  });

  it('refuses before the backward pass, naming the memory needed and --max-feature-nodes', () => {
    const e = estimateTraceMemory(gemma, 7500, src);
    expect(() => assertFitsInMemory(e, 7500, active, e.bytes)).not.toThrow();
    const err = refusal(() => assertFitsInMemory(e, 7500, active, e.bytes / 2));
    expect(err.message).toMatch(
      /^this trace needs about [\d.]+ GiB more memory \(feature rows [\d.]+ GiB, adjacency [\d.]+ GiB, backward batches .*, pruning and output .*\) on top of [\d.]+ GiB already held, but about [\d.]+ GiB is available; lower --max-feature-nodes \(now 7500\)/,
    );
    // a cap above the active count is all of them, and says so
    const small = { ...src, nActive: 100 };
    expect(refusal(() => assertFitsInMemory(e, 7500, small.nActive, 1)).message).toMatch(
      /now 7500: all 100 active features/,
    );
  });

  it('refuses before the forward pass when even a graph without features cannot fit', () => {
    const long = { ...gemma, T: 4000 };
    const pre = estimateTraceMemory(long, 0);
    expect(pre.parts['forward cache']).toBeGreaterThan(26 * 8 * 4000 * 4000 * 4); // the patterns
    const err = refusal(() => assertFitsInMemory(pre, 7500, undefined, 2 ** 30));
    expect(err.message).toMatch(/shorten the prompt.*--max-feature-nodes/);
  });

  it('refuses an adjacency larger than one typed array, whatever the memory', () => {
    const maxNodes = Math.floor(Math.sqrt(MAX_TYPED_ARRAY_LENGTH));
    const huge = { ...src, nActive: 200_000, nColumns: 200_000 + 26 * 400 + 400 };
    const e = estimateTraceMemory(gemma, 100_000, huge);
    expect(e.nodes).toBeGreaterThan(maxNodes);
    const err = refusal(() => assertFitsInMemory(e, 100_000, huge.nActive, Number.POSITIVE_INFINITY));
    expect(err.message).toContain(`at most ${maxNodes} nodes`);
    expect(err.message).toContain('--max-feature-nodes (now 100000)');
  });
});
