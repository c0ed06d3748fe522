/**
 * The graph sidecar: the unpruned adjacency of one trace in compressed sparse rows, with the
 * node tables, as a safetensors file (readable by numpy / torch / safetensors too):
 *
 *   row_ptr            I32 [N+1]   row t's entries are col/val[row_ptr[t] .. row_ptr[t+1])
 *                                 (I64 when the graph has 2^31 or more nonzero entries)
 *   col                I32 [nnz]   source index, ascending within a row
 *   val                F32 [nnz]   A[t, col], the raw signed attribution (zeros omitted)
 *   feature_layer, feature_position, feature_index (I32 [F]), feature_activation (F32 [F]),
 *   logit_token_id (I32 [K]), logit_probability (F32 [K]), prompt_token_id (I32 [T])
 *
 * `__metadata__`: {"format": "circuit-workbench-graph-csr", "version": "1", "n_layers",
 * "n_nodes", "prompt_tokens", "logit_tokens" (JSON lists)}. Rows are targets and columns
 * sources, in the node order of graph-types.ts. Dense ↔ CSR is exact (float32 values are
 * copied; only zeros are dropped), so re-pruning a stored graph gives what pruning the freshly
 * computed one gives.
 *
 * Writing is durable: a temporary file in the same folder, fsync, rename, fsync of the folder.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AttributionNodes, RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import { IO_CHUNK, MAX_TYPED_ARRAY_LENGTH } from '../engine/checkpoint/file-reader.ts';
import { openSafetensors } from '../engine/checkpoint/safetensors.ts';
import { writeSafetensors } from '../engine/checkpoint/safetensors-writer.ts';
import { isEngineError } from '../engine/errors.ts';
import { int32s } from './blobs.ts';
import { StoreError } from './errors.ts';

export const GRAPH_FILE_FORMAT = 'circuit-workbench-graph-csr';
export const GRAPH_FILE_EXT = '.cwgraph';

export interface CsrAdjacency {
  n: number;
  /** Int32Array while the entry count fits in int32; Float64Array (stored as I64) beyond. */
  rowPtr: Int32Array | Float64Array;
  col: Int32Array;
  val: Float32Array;
}

/** Row pointers above this are stored as I64 (tests lower it to exercise that path). */
export const CSR_LIMITS = { int32RowPtr: 2 ** 31 - 1 };

export function denseToCsr(adjacency: Float32Array, n: number): CsrAdjacency {
  const total = n * n;
  if (adjacency.length !== total) {
    throw new StoreError('corrupt', `adjacency has ${adjacency.length} values, expected ${n}×${n}`);
  }
  // One pass over the matrix, two float32 values at a time through a float64 view (a pair of
  // zeros, +0 or -0 in the upper half, reads as a float64 zero); the output grows by doubling.
  // Sizes are plain numbers (n² may pass 2^32); row pointers are float64 until the end.
  const rowPtr = new Float64Array(n + 1);
  let cap = Math.max(1024, 8 * n);
  let col = new Int32Array(cap);
  let val = new Float32Array(cap);
  let q = 0;
  let row = 0;
  let rowEnd = n;
  const push = (k: number, x: number) => {
    while (k >= rowEnd) {
      row++;
      rowPtr[row] = q;
      rowEnd += n;
    }
    if (q === cap) {
      if (cap >= MAX_TYPED_ARRAY_LENGTH) {
        throw new StoreError(
          'io',
          `the adjacency has more than ${MAX_TYPED_ARRAY_LENGTH} nonzero entries, more than one array holds`,
        );
      }
      cap = Math.min(cap * 2, MAX_TYPED_ARRAY_LENGTH);
      const c2 = new Int32Array(cap);
      c2.set(col);
      col = c2;
      const v2 = new Float32Array(cap);
      v2.set(val);
      val = v2;
    }
    col[q] = k - (rowEnd - n);
    val[q] = x;
    q++;
  };
  let k0 = 0;
  if (adjacency.byteOffset % 8 === 0) {
    const pairs = new Float64Array(adjacency.buffer, adjacency.byteOffset, Math.floor(total / 2));
    for (let p = 0; p < pairs.length; p++) {
      if (pairs[p] === 0) continue;
      const k = 2 * p;
      if (adjacency[k] !== 0) push(k, adjacency[k]);
      if (adjacency[k + 1] !== 0) push(k + 1, adjacency[k + 1]);
    }
    k0 = pairs.length * 2;
  }
  for (let k = k0; k < total; k++) if (adjacency[k] !== 0) push(k, adjacency[k]);
  for (let r = row + 1; r <= n; r++) rowPtr[r] = q;
  return {
    n,
    rowPtr: q <= CSR_LIMITS.int32RowPtr ? Int32Array.from(rowPtr) : rowPtr,
    col: col.slice(0, q),
    val: val.slice(0, q),
  };
}

export function csrToDense(csr: CsrAdjacency): Float32Array {
  const { n, rowPtr, col, val } = csr;
  const out = new Float32Array(n * n);
  for (let t = 0; t < n; t++) {
    const base = t * n;
    for (let q = rowPtr[t]; q < rowPtr[t + 1]; q++) out[base + col[q]] = val[q];
  }
  return out;
}

/** sha256 of the adjacency's content (row_ptr, col, val bytes), hex. */
export function adjacencyHash(csr: CsrAdjacency): string {
  const h = crypto.createHash('sha256');
  for (const a of [csr.rowPtr, csr.col, csr.val]) {
    // in pieces: one Uint8Array view cannot span more than 4 GiB
    for (let off = 0; off < a.byteLength; off += IO_CHUNK.bytes)
      h.update(new Uint8Array(a.buffer, a.byteOffset + off, Math.min(IO_CHUNK.bytes, a.byteLength - off)));
  }
  return h.digest('hex');
}

/** Row pointers as stored: I32, or I64 (little-endian) for graphs past int32. */
function rowPtrTensor(rowPtr: Int32Array | Float64Array): { dtype: 'I32' | 'I64'; data: ArrayBufferView } {
  if (rowPtr instanceof Int32Array) return { dtype: 'I32', data: rowPtr };
  const out = new BigInt64Array(rowPtr.length);
  for (let i = 0; i < rowPtr.length; i++) out[i] = BigInt(rowPtr[i]);
  return { dtype: 'I64', data: out };
}

/** fsync a file or folder (folders cannot be fsynced on Windows: skipped there). */
export function fsyncPath(p: string, isDir = false): void {
  if (isDir && process.platform === 'win32') return;
  const fd = fs.openSync(p, isDir ? 'r' : 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes the sidecar at `file` durably (temporary file `file + '.tmp'`, fsync, rename, fsync
 * of the folder). Returns the file size.
 */
export function writeGraphFile(file: string, nodes: AttributionNodes, csr: CsrAdjacency): number {
  const N = nodeLayout(nodes).total;
  if (csr.n !== N || csr.rowPtr.length !== N + 1) {
    throw new StoreError('corrupt', `adjacency is for ${csr.n} nodes, the node table has ${N}`);
  }
  const nnz = csr.col.length;
  const F = nodes.features.layer.length;
  const K = nodes.logits.tokenId.length;
  const T = nodes.nPositions;
  const tmp = `${file}.tmp`;
  try {
    writeSafetensors(
      tmp,
      [
        { name: 'row_ptr', shape: [N + 1], ...rowPtrTensor(csr.rowPtr) },
        { name: 'col', dtype: 'I32', shape: [nnz], data: csr.col },
        { name: 'val', dtype: 'F32', shape: [nnz], data: csr.val },
        { name: 'feature_layer', dtype: 'I32', shape: [F], data: nodes.features.layer },
        { name: 'feature_position', dtype: 'I32', shape: [F], data: nodes.features.position },
        { name: 'feature_index', dtype: 'I32', shape: [F], data: nodes.features.index },
        { name: 'feature_activation', dtype: 'F32', shape: [F], data: nodes.features.activation },
        { name: 'logit_token_id', dtype: 'I32', shape: [K], data: nodes.logits.tokenId },
        { name: 'logit_probability', dtype: 'F32', shape: [K], data: nodes.logits.probability },
        { name: 'prompt_token_id', dtype: 'I32', shape: [T], data: nodes.promptTokenIds },
      ],
      {
        format: GRAPH_FILE_FORMAT,
        version: '1',
        n_layers: String(nodes.nLayers),
        n_nodes: String(N),
        prompt_tokens: JSON.stringify(nodes.promptTokens),
        logit_tokens: JSON.stringify(nodes.logits.token),
      },
    );
    fsyncPath(tmp);
    fs.renameSync(tmp, file);
    fsyncPath(path.dirname(file), true);
    return fs.statSync(file).size;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof StoreError) throw e;
    throw new StoreError('io', `cannot write the graph file ${file}: ${(e as Error).message}`, file);
  }
}

function readRowPtr(st: ReturnType<typeof openSafetensors>): Int32Array | Float64Array {
  const info = st.info('row_ptr');
  if (info.dtype === 'I32') return int32s(st.readRaw('row_ptr'));
  if (info.dtype !== 'I64')
    throw new StoreError('corrupt', `row_ptr of ${st.path} is ${info.dtype}`, st.path);
  const wide = new BigInt64Array(info.byteLength / 8);
  st.readRawInto('row_ptr', wide);
  return Float64Array.from(wide, Number);
}

/** Reads the adjacency of a sidecar (the node tables are in the database). */
export function readGraphAdjacency(file: string, expectNodes: number, expectBytes?: number): CsrAdjacency {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    throw new StoreError('corrupt', `the graph file ${file} is missing`, file);
  }
  if (expectBytes !== undefined && size !== expectBytes) {
    throw new StoreError(
      'corrupt',
      `the graph file ${file} has ${size} bytes, the library recorded ${expectBytes}`,
    );
  }
  try {
    const st = openSafetensors(file);
    try {
      if (st.metadata?.format !== GRAPH_FILE_FORMAT) {
        throw new StoreError('corrupt', `${file} is not a graph file (format ${st.metadata?.format})`, file);
      }
      const rowPtr = readRowPtr(st);
      // read in place, in pieces (the entries may pass 4 GiB)
      const colInfo = st.info('col');
      if (colInfo.dtype !== 'I32')
        throw new StoreError('corrupt', `col of ${file} is ${colInfo.dtype}`, file);
      const col = new Int32Array(colInfo.byteLength / 4);
      st.readRawInto('col', col);
      const val = st.readFloat32('val');
      const n = rowPtr.length - 1;
      if (n !== expectNodes || rowPtr[0] !== 0 || rowPtr[n] !== col.length || col.length !== val.length) {
        throw new StoreError(
          'corrupt',
          `the graph file ${file} does not fit its ${expectNodes}-node table`,
          file,
        );
      }
      for (let t = 0; t < n; t++) {
        if (rowPtr[t + 1] < rowPtr[t])
          throw new StoreError('corrupt', `row_ptr of ${file} decreases at ${t}`, file);
      }
      for (let q = 0; q < col.length; q++) {
        if (!(col[q] >= 0 && col[q] < n))
          throw new StoreError('corrupt', `column ${col[q]} out of range in ${file}`);
      }
      return { n, rowPtr, col, val };
    } finally {
      st.close();
    }
  } catch (e) {
    if (e instanceof StoreError) throw e;
    if (isEngineError(e))
      throw new StoreError('corrupt', `the graph file ${file} is unreadable: ${e.message}`, file);
    throw e;
  }
}

/** The dense raw graph from its node table and sidecar. */
export function rawGraphFrom(nodes: AttributionNodes, csr: CsrAdjacency): RawAttributionGraph {
  return { nodes, adjacency: csrToDense(csr) };
}
