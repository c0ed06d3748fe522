/**
 * The graph sidecar past 32-bit sizes, with the limits lowered instead of multi-GB graphs:
 * row pointers stored as I64 once the entry count passes int32, and files written, read and
 * hashed in IO_CHUNK pieces (one Uint8Array view cannot span more than 4 GiB).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IO_CHUNK } from '../../electron/engine/checkpoint/file-reader.ts';
import { openSafetensors } from '../../electron/engine/checkpoint/safetensors.ts';
import {
  adjacencyHash,
  CSR_LIMITS,
  csrToDense,
  denseToCsr,
  readGraphAdjacency,
  writeGraphFile,
} from '../../electron/store/graph-file.ts';
import { tempDir } from './helpers.ts';
import { syntheticGraph } from './synthetic.ts';

const tmp = tempDir('cw-graph-large-');
afterAll(() => tmp.cleanup());
const defaults = { chunk: IO_CHUNK.bytes, rowPtr: CSR_LIMITS.int32RowPtr };
afterEach(() => {
  IO_CHUNK.bytes = defaults.chunk;
  CSR_LIMITS.int32RowPtr = defaults.rowPtr;
});

describe('graph file past 32-bit sizes', () => {
  it('stores row pointers as I64 past int32 and reads, hashes and expands them exactly', () => {
    const g = syntheticGraph(7, { nFeatures: 60 });
    const N = Math.sqrt(g.adjacency.length);
    const narrow = denseToCsr(g.adjacency, N);
    expect(narrow.rowPtr).toBeInstanceOf(Int32Array);
    CSR_LIMITS.int32RowPtr = 10; // as if the graph had 2^31 entries
    const wide = denseToCsr(g.adjacency, N);
    expect(wide.rowPtr).toBeInstanceOf(Float64Array);
    expect(Array.from(wide.rowPtr)).toEqual(Array.from(narrow.rowPtr));
    expect(wide.col).toEqual(narrow.col);

    IO_CHUNK.bytes = 20; // every array spans many pieces
    const file = path.join(tmp.dir, 'wide.cwgraph');
    const bytes = writeGraphFile(file, g.nodes, wide);
    expect(fs.statSync(file).size).toBe(bytes);
    const st = openSafetensors(file);
    expect(st.info('row_ptr').dtype).toBe('I64');
    st.close();
    const back = readGraphAdjacency(file, N, bytes);
    expect(back.rowPtr).toBeInstanceOf(Float64Array);
    expect(Array.from(back.rowPtr)).toEqual(Array.from(narrow.rowPtr));
    expect(back.col).toEqual(narrow.col);
    expect(back.val).toEqual(narrow.val);
    expect(adjacencyHash(back)).toBe(adjacencyHash(wide));
    expect(Buffer.from(csrToDense(back).buffer).equals(Buffer.from(g.adjacency.buffer))).toBe(true);
  });

  it('hashes the same in pieces as in one piece', () => {
    const g = syntheticGraph(8, { nFeatures: 40 });
    const csr = denseToCsr(g.adjacency, Math.sqrt(g.adjacency.length));
    const whole = adjacencyHash(csr);
    IO_CHUNK.bytes = 3;
    expect(adjacencyHash(csr)).toBe(whole);
  });
});
