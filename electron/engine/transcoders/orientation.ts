/**
 * Re-orienting matrices stored transposed ([d, d_t] instead of [d_t, d]).
 */
import type { TensorStore } from '../checkpoint/tensor.ts';

/** Largest block of a transposed matrix decoded at once by gatherColumns (float32 values). */
const BLOCK_VALUES = 4 * 1024 * 1024;

/** src [rows, cols] row-major → [cols, rows] row-major. */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[o + c];
  }
  return out;
}

/**
 * Columns `cols` of the [nRows, nCols] matrix `name`, as rows of the result
 * [cols.length, nRows]: the rows of the logical transpose. Reads the matrix in blocks of
 * rows (bounded memory); every byte is read once.
 */
export function gatherColumns(
  store: TensorStore,
  name: string,
  nRows: number,
  nCols: number,
  cols: readonly number[],
): Float32Array {
  const n = cols.length;
  const out = new Float32Array(n * nRows);
  if (n === 0 || nRows === 0) return out;
  const block = Math.max(1, Math.floor(BLOCK_VALUES / Math.max(nCols, 1)));
  for (let r0 = 0; r0 < nRows; r0 += block) {
    const r1 = Math.min(nRows, r0 + block);
    const rows = Array.from({ length: r1 - r0 }, (_, i) => r0 + i);
    const data = store.readRowsFloat32(name, rows);
    for (let r = r0; r < r1; r++) {
      const o = (r - r0) * nCols;
      for (let i = 0; i < n; i++) out[i * nRows + r] = data[o + cols[i]];
    }
  }
  return out;
}
