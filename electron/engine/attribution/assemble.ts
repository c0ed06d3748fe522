/**
 * The raw attribution graph from the computed rows: the dense N×N adjacency over
 * [selected features | errors | tokens | logits] (circuit-tracer's layout) and the node tables.
 */
import type { LogitTarget } from './attribute.ts';
import type { ForwardCache } from './forward-cache.ts';
import type { RawAttributionGraph } from './graph-types.ts';
import type { SourceSpace } from './sources.ts';

/** The graph's node count N: selected features, an error per (layer, position), tokens, logits. */
export function graphNodeCount(nSelected: number, nLayers: number, T: number, nLogits: number): number {
  return nSelected + nLayers * T + T + nLogits;
}

/** Dense N×N adjacency over [selected features | errors | tokens | logits]. */
export function assembleGraph(
  prepared: { space: SourceSpace; cache: Pick<ForwardCache, 'nLayers' | 'T'> },
  selected: number[],
  featureRows: Map<number, Float32Array>,
  logitRows: Float32Array[],
  logitTokens: LogitTarget[],
  tokenIds: number[],
  tokenToString: ((id: number) => string) | undefined,
  /** A zeroed N×N array to fill (made ahead: attribute.ts has its pages faulted in meanwhile). */
  into?: Float32Array,
): RawAttributionGraph {
  const { space, cache } = prepared;
  const nSel = selected.length;
  const nErr = cache.nLayers * cache.T;
  const N = graphNodeCount(nSel, cache.nLayers, cache.T, logitTokens.length);
  const runs = columnRuns(selected);
  if (into && into.length !== N * N)
    throw new Error(`assembleGraph: an adjacency of ${into.length} for ${N}×${N}`);
  const adjacency = into ?? new Float32Array(N * N);
  const fill = (rowIndex: number, row: Float32Array) => {
    const base = rowIndex * N;
    if (runs) {
      for (let r = 0; r < runs.length; r += 3) {
        adjacency.set(row.subarray(runs[r], runs[r] + runs[r + 2]), base + runs[r + 1]);
      }
    } else {
      for (let i = 0; i < nSel; i++) adjacency[base + i] = row[selected[i]];
    }
    adjacency.set(row.subarray(space.errorOffset, space.nColumns), base + nSel);
  };
  for (const [i, a] of selected.entries()) fill(i, featureRows.get(a)!);
  for (const [k, row] of logitRows.entries()) fill(nSel + nErr + cache.T + k, row);
  const name = tokenToString ?? ((id: number) => `<${id}>`);
  return {
    nodes: {
      nLayers: cache.nLayers,
      nPositions: cache.T,
      promptTokenIds: Int32Array.from(tokenIds),
      promptTokens: tokenIds.map(name),
      features: {
        layer: Int32Array.from(selected.map((a) => space.featureLayer[a])),
        position: Int32Array.from(selected.map((a) => space.featurePosition[a])),
        index: Int32Array.from(selected.map((a) => space.featureIndex[a])),
        activation: Float32Array.from(selected.map((a) => space.featureActivation[a])),
      },
      logits: {
        tokenId: Int32Array.from(logitTokens.map((t) => t.tokenId)),
        probability: Float32Array.from(logitTokens.map((t) => t.prob)),
        token: logitTokens.map((t) => t.label ?? name(t.tokenId)),
      },
    },
    adjacency,
  };
}

/**
 * The selected source columns (ascending) as runs of consecutive columns, [source, graph column,
 * length] each, when the runs are long enough for block copies to beat an element-wise gather
 * (a trace of nearly every active feature: a few hundred runs of a row of thousands); else null.
 */
export function columnRuns(selected: readonly number[]): Int32Array | null {
  const runs: number[] = [];
  for (let i = 0; i < selected.length; ) {
    let j = i + 1;
    while (j < selected.length && selected[j] === selected[j - 1] + 1) j++;
    runs.push(selected[i], i, j - i);
    i = j;
  }
  const MIN_MEAN_RUN = 16;
  return runs.length * MIN_MEAN_RUN <= selected.length * 3 ? Int32Array.from(runs) : null;
}
