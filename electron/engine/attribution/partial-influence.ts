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
 *
 * The topological order is usually known without looking for it: a trace's columns put the
 * features in (layer, position, index) order and a feature's row reads only lower layers, so
 * the logit rows and then the feature rows by decreasing column are one. When every feature row
 * reads only node columns below its own (checked from its stretches, cheaply), that order is
 * used; otherwise the order is found by counting each row's readers (two more passes over the
 * nonzero entries: at gemma-2-2b's shape, most of an estimate's time).
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
  /** How the latest estimate went: rows in column order, by counting readers, or iterated (a cycle). */
  lastPass: 'ordered' | 'counted' | 'iterated' | null = null;

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
    const { column } = this;
    // Rows whose node is a column (feature rows), ordered by that column: they receive influence.
    const nodeRows = column.flatMap((c, r) => (c >= 0 ? [r] : [])).sort((a, b) => column[a] - column[b]);
    const nodeColumns = Float64Array.from(nodeRows, (r) => column[r]);
    if (this.readsOnlyBelow(nodeColumns)) {
      // Logit rows first, then feature rows by decreasing column: every reader of a column comes first.
      const order = column.flatMap((c, r) => (c < 0 ? [r] : []));
      for (let k = nodeRows.length - 1; k >= 0; k--) order.push(nodeRows[k]);
      const influence = new Float64Array(this.nColumns);
      for (const r of order) this.spread(r, influence);
      this.lastPass = 'ordered';
      return influence;
    }
    return this.estimateByCounting(nodeRows, nodeColumns);
  }

  /** Whether every feature row's nonzero entries at node columns are all below its own column. */
  private readsOnlyBelow(nodeColumns: Float64Array): boolean {
    const { rows, column, spans } = this;
    if (nodeColumns.length === 0) return true;
    const lastNode = nodeColumns[nodeColumns.length - 1];
    for (let r = 0; r < rows.length; r++) {
      const own = column[r];
      if (own < 0) continue;
      const sp = spans[r];
      for (let k = sp.length - 2; k >= 0; k -= 2) {
        if (sp[k + 1] <= own) break; // stretches are in column order: the rest lie below
        if (sp[k] > lastNode) continue; // beyond every node column (errors, tokens)
        for (
          let q = lowerBound(nodeColumns, Math.max(sp[k], own));
          q < nodeColumns.length && nodeColumns[q] < sp[k + 1];
          q++
        )
          if (rows[r][nodeColumns[q]] !== 0) return false;
      }
    }
    return true;
  }

  /** Row r's share: (its weight + the influence reaching its column) · |row| / Σ|row|, added to `influence`. */
  private spread(r: number, influence: Float64Array): void {
    const x = this.weight[r] + (this.column[r] >= 0 ? influence[this.column[r]] : 0);
    const inv = this.inv[r];
    if (x === 0 || inv === 0) return;
    const coef = x * inv;
    const row = this.rows[r];
    const sp = this.spans[r];
    for (let k = 0; k < sp.length; k += 2)
      for (let c = sp[k]; c < sp[k + 1]; c++) influence[c] += coef * Math.abs(row[c]);
  }

  /** The same by counting each row's readers (any order of columns; a cycle falls back to iterate()). */
  private estimateByCounting(nodeRows: number[], nodeColumns: Float64Array): Float64Array {
    const { rows, spans, nColumns: C } = this;
    const R = rows.length;
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
      this.spread(r, influence);
      forEachRead(r, release);
    }
    this.lastPass = done === R ? 'counted' : 'iterated';
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
