/**
 * Influence on the logits estimated from the rows computed so far (attribution.md §4):
 * rows are normalized (|A| / row sum), the logit rows start with their probabilities, and
 * influence flows down through the rows whose target node already has a row.
 */
export function partialInfluence(
  rows: readonly Float32Array[],
  /** Per row: the column of the row's own node, or −1 for logit rows. */
  rowColumn: readonly number[],
  /** Per row: the logit probability, 0 for feature rows. */
  rowWeight: readonly number[],
  nColumns: number,
): Float64Array {
  const R = rows.length;
  const inv = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let sum = 0;
    for (const v of rows[r]) sum += Math.abs(v);
    inv[r] = sum > 0 ? 1 / sum : 0;
  }
  const rowOfColumn = new Map<number, number>();
  rowColumn.forEach((c, r) => {
    if (c >= 0) rowOfColumn.set(c, r);
  });
  const influence = new Float64Array(nColumns);
  let current = Float64Array.from(rowWeight);
  for (let iter = 0; iter <= R; iter++) {
    const next = new Float64Array(nColumns);
    let any = false;
    for (let r = 0; r < R; r++) {
      const w = current[r] * inv[r];
      if (w === 0) continue;
      any = true;
      const row = rows[r];
      for (let c = 0; c < nColumns; c++) next[c] += w * Math.abs(row[c]);
    }
    if (!any) break;
    for (let c = 0; c < nColumns; c++) influence[c] += next[c];
    current = new Float64Array(R);
    for (const [c, r] of rowOfColumn) current[r] = next[c];
  }
  return influence;
}
