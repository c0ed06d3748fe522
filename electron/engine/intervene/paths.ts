/**
 * The strongest paths through feature nodes from one source (e.g. a prompt token) to one logit
 * target of an attribution graph: candidates for an intervention. A path's weight is the
 * product of its raw signed edges A[t, s]; positive paths push the logit up.
 */
import type { AttributionResult } from '../attribution/attribute.ts';

export interface FeaturePath {
  /** Active feature indices, from the source side to the logit side. */
  features: number[];
  /** Product of the edges source → features… → logit. */
  weight: number;
}

/**
 * Beam search over the feature DAG (an edge always goes to a higher layer): each feature
 * keeps its `beam` highest and `beam` lowest partial products from the source (the lowest
 * because two negative edges make a positive path). Returns the `k` highest-weight paths,
 * positive ones only.
 */
export function strongestPaths(
  result: Pick<AttributionResult, 'featureRows' | 'logitRows' | 'prepared'>,
  sourceColumn: number,
  logitIndex: number,
  k: number,
  beam = 16,
): FeaturePath[] {
  const { space } = result.prepared;
  const order = [...result.featureRows.keys()].sort(
    (a, b) => space.featureLayer[a] - space.featureLayer[b] || a - b,
  );
  const partial = new Map<number, FeaturePath[]>();
  const keep = (paths: FeaturePath[]) => {
    if (paths.length <= 2 * beam) return paths;
    paths.sort((x, y) => y.weight - x.weight);
    return [...paths.slice(0, beam), ...paths.slice(-beam)];
  };
  for (const t of order) {
    const row = result.featureRows.get(t)!;
    const paths: FeaturePath[] = [];
    if (row[sourceColumn] !== 0) paths.push({ features: [t], weight: row[sourceColumn] });
    for (const [s, from] of partial) {
      const w = row[s];
      if (w === 0 || space.featureLayer[s] >= space.featureLayer[t]) continue;
      for (const p of from) paths.push({ features: [...p.features, t], weight: p.weight * w });
    }
    if (paths.length) partial.set(t, keep(paths));
  }
  const logitRow = result.logitRows[logitIndex];
  const done: FeaturePath[] = [];
  for (const [t, from] of partial) {
    const w = logitRow[t];
    if (w === 0) continue;
    for (const p of from) done.push({ features: p.features, weight: p.weight * w });
  }
  return done
    .filter((p) => p.weight > 0)
    .sort((x, y) => y.weight - x.weight)
    .slice(0, k);
}
