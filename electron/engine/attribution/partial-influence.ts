/**
 * Influence on the logits estimated from the rows computed so far (attribution.md §4):
 * rows are normalized (|A| / row sum), the logit rows start with their probabilities, and
 * influence flows down through the rows whose target node already has a row.
 *
 * `PartialInfluence` keeps the rows added so far with their inverse row sums (computed once
 * per row, not once per estimate) and estimates in one topological pass: x_r = w_r + inf[c_r]
 * is final once every row that reads c_r has been processed, and then row r adds
 * x_r · |A_r| / Σ|A_r| to inf. That is the series inf = wᵀ(Â + Â² + …) of the iteration
 * (`iterate` below) summed in another order (float rounding apart), but each row is read
 * once per estimate instead of once per step of the longest path. Rows that form a cycle
 * (not an attribution graph) fall back to the iteration.
 */
/** Zero runs longer than this split a row's nonzero stretches. */
const SPAN_GAP = 32;

/** First index q with sorted[q] >= x. */
function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class PartialInfluence {
  private readonly rows: Float32Array[] = [];
  /** Per row: the column of the row's own node, or −1 for logit rows. */
  private readonly column: number[] = [];
  /** Per row: the logit probability, 0 for feature rows. */
  private readonly weight: number[] = [];
  /** Per row: 1 / Σ|row| (0 for a zero row). */
  private readonly inv: number[] = [];
  /**
   * Per row: its nonzero stretches as [begin, end) pairs. Rows are mostly zero by causality
   * (nothing from later positions, a feature target reads only lower layers), in long runs
   * along the (layer, position, index) column order, so every pass skips them.
   */
  private readonly spans: Int32Array[] = [];
  private readonly columns = new Set<number>();

  constructor(readonly nColumns: number) {}

  get size(): number {
    return this.rows.length;
  }

  /** Whether the row of column `column`'s node was added. */
  has(column: number): boolean {
    return this.columns.has(column);
  }

  add(row: Float32Array, column: number, weight: number): void {
    if (column >= 0) this.columns.add(column);
    let sum = 0;
    const spans: number[] = [];
    let begin = -1;
    let lastNonzero = -1;
    for (let c = 0; c < row.length; c++) {
      const x = row[c];
      if (x === 0) continue;
      sum += Math.abs(x);
      if (begin < 0) begin = c;
      else if (c - lastNonzero > SPAN_GAP) {
        spans.push(begin, lastNonzero + 1);
        begin = c;
      }
      lastNonzero = c;
    }
    if (begin >= 0) spans.push(begin, lastNonzero + 1);
    this.rows.push(row);
    this.column.push(column);
    this.weight.push(weight);
    this.inv.push(sum > 0 ? 1 / sum : 0);
    this.spans.push(Int32Array.from(spans));
  }

  /** Influence of every column (float64, without + w). */
  estimate(): Float64Array {
    const { rows, column, weight, inv, spans, nColumns: C } = this;
    const R = rows.length;
    // Rows whose node is a column (feature rows), ordered by that column: they receive influence.
    const nodeRows = column.flatMap((c, r) => (c >= 0 ? [r] : [])).sort((a, b) => column[a] - column[b]);
    const nodeColumns = Float64Array.from(nodeRows, (r) => column[r]);
    /** Calls visit(s) for every node row s whose column row r reads (nonzero entry). */
    const forEachRead = (r: number, visit: (s: number) => void) => {
      const row = rows[r];
      const sp = spans[r];
      for (let k = 0; k < sp.length; k += 2) {
        for (let q = lowerBound(nodeColumns, sp[k]); q < nodeRows.length && nodeColumns[q] < sp[k + 1]; q++)
          if (row[nodeColumns[q]] !== 0) visit(nodeRows[q]);
      }
    };
    // pending[s] = rows not processed yet that read row s's column.
    const pending = new Int32Array(R);
    const count = (s: number) => {
      pending[s]++;
    };
    for (let r = 0; r < R; r++) forEachRead(r, count);
    const influence = new Float64Array(C);
    const stack: number[] = [];
    const release = (s: number) => {
      if (--pending[s] === 0) stack.push(s);
    };
    for (let r = R - 1; r >= 0; r--) if (pending[r] === 0) stack.push(r);
    let done = 0;
    while (stack.length > 0) {
      const r = stack.pop()!;
      done++;
      const x = weight[r] + (column[r] >= 0 ? influence[column[r]] : 0);
      if (x !== 0 && inv[r] !== 0) {
        const coef = x * inv[r];
        const row = rows[r];
        const sp = spans[r];
        for (let k = 0; k < sp.length; k += 2)
          for (let c = sp[k]; c < sp[k + 1]; c++) influence[c] += coef * Math.abs(row[c]);
      }
      forEachRead(r, release);
    }
    return done === R ? influence : this.iterate();
  }

  /** The series by iteration: v ← v·Â from the logit weights until v vanishes (any pattern). */
  iterate(): Float64Array {
    const { rows, column, weight, inv, nColumns: C } = this;
    const R = rows.length;
    const rowOfColumn = new Map<number, number>();
    column.forEach((c, r) => {
      if (c >= 0) rowOfColumn.set(c, r);
    });
    const influence = new Float64Array(C);
    let current = Float64Array.from(weight);
    for (let iter = 0; iter <= R; iter++) {
      const next = new Float64Array(C);
      let any = false;
      for (let r = 0; r < R; r++) {
        const w = current[r] * inv[r];
        if (w === 0) continue;
        any = true;
        const row = rows[r];
        for (let c = 0; c < C; c++) next[c] += w * Math.abs(row[c]);
      }
      if (!any) break;
      for (let c = 0; c < C; c++) influence[c] += next[c];
      current = new Float64Array(R);
      for (const [c, r] of rowOfColumn) current[r] = next[c];
    }
    return influence;
  }
}

/** One-shot estimate (see PartialInfluence). */
export function partialInfluence(
  rows: readonly Float32Array[],
  rowColumn: readonly number[],
  rowWeight: readonly number[],
  nColumns: number,
): Float64Array {
  const p = new PartialInfluence(nColumns);
  rows.forEach((row, r) => {
    p.add(row, rowColumn[r], rowWeight[r]);
  });
  return p.estimate();
}
