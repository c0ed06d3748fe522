/**
 * The packed edge form of graphs.view (electron/api/packed-edges.ts): base64 against Node's
 * Buffer, typed arrays bit for bit through pack / unpack, the checks on decode (lengths,
 * characters, node indices), and the service's packed view against its plain one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  base64ToBytes,
  bytesToBase64,
  decodeViewEdges,
  mergedEdgeArrays,
  packEdges,
  packMergedEdges,
  unpackEdges,
  unpackMergedEdges,
} from '../../electron/api/packed-edges.ts';
import { prng } from '../fixtures/prng.ts';
import { saveSynthetic } from '../store/helpers.ts';
import { syntheticGraph } from '../store/synthetic.ts';
import { type Harness, harness } from './helpers.ts';

const thrown = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a throw');
};

describe('base64', () => {
  it('matches Node Buffer for every tail length and all byte values', () => {
    const rand = prng(3);
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
      const text = bytesToBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(base64ToBytes(text)).toEqual(bytes);
    }
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(base64ToBytes(Buffer.from(all).toString('base64'))).toEqual(all);
  });

  it('rejects a length that is not a multiple of 4 and characters outside the alphabet', () => {
    expect(base64ToBytes('QUJD')).toEqual(new Uint8Array([65, 66, 67]));
    expect(thrown(() => base64ToBytes('QUJ', 'weight'))).toBe(
      'packed edges: weight: length 3 is not a multiple of 4',
    );
    for (const bad of ['QU-D', 'QUJ\u00e9', 'Q===', '====', 'QU=D'])
      expect(thrown(() => base64ToBytes(bad, 'source'))).toMatch(/^packed edges: source: /);
  });
});

describe('packed edges', () => {
  const edges = (n: number, nodes: number, seed = 5) => {
    const rand = prng(seed);
    return {
      source: Uint32Array.from({ length: n }, () => Math.floor(rand() * nodes)),
      target: Uint32Array.from({ length: n }, () => Math.floor(rand() * nodes)),
      weight: Float32Array.from({ length: n }, () => (rand() - 0.5) * 10),
    };
  };

  it('round-trips the typed arrays bit for bit, including odd float values', () => {
    for (const n of [0, 1, 2, 3, 1000]) {
      const e = edges(n, 50);
      if (n >= 3) e.weight.set([-0, Number.POSITIVE_INFINITY, 1e-45]);
      const back = unpackEdges(packEdges(e), 50);
      expect(back.source).toEqual(e.source);
      expect(back.target).toEqual(e.target);
      expect(new Uint8Array(back.weight.buffer)).toEqual(new Uint8Array(e.weight.buffer));
    }
  });

  it('sends little-endian bytes', () => {
    const p = packEdges({
      source: new Uint32Array([0x01020304]),
      target: new Uint32Array([1]),
      weight: new Float32Array([1]),
    });
    expect([...Buffer.from(p.source, 'base64')]).toEqual([4, 3, 2, 1]);
    expect(Buffer.from(p.weight, 'base64').readFloatLE(0)).toBe(1);
  });

  it('rejects arrays whose byte length is not count × 4', () => {
    const p = packEdges(edges(3, 10));
    expect(thrown(() => unpackEdges({ ...p, count: 4 }, 10))).toBe(
      'packed edges: source holds 12 bytes, expected 16 (4 edges × 4)',
    );
    const short = packEdges(edges(2, 10)).weight;
    expect(thrown(() => unpackEdges({ ...p, weight: short }, 10))).toBe(
      'packed edges: weight holds 8 bytes, expected 12 (3 edges × 4)',
    );
    expect(thrown(() => unpackEdges({ ...p, count: -1 }, 10))).toBe(
      'packed edges: count -1 is not a whole number ≥ 0',
    );
    expect(thrown(() => unpackEdges({ ...p, target: 7 as unknown as string }, 10))).toBe(
      'packed edges: target is not a base64 string',
    );
  });

  it('rejects a source or target index outside the view, naming the edge', () => {
    const e = edges(4, 10);
    e.target[2] = 10;
    expect(thrown(() => unpackEdges(packEdges(e), 10))).toBe(
      `packed edges: edge 2 (${e.source[2]} → 10) names a node index ≥ the view's 10 nodes`,
    );
    expect(unpackEdges(packEdges(e), 11).target[2]).toBe(10);
  });

  it('throws when the arrays to pack differ in length', () => {
    const e = edges(3, 10);
    expect(thrown(() => packEdges({ ...e, weight: e.weight.subarray(1) }))).toBe(
      'packed edges: edge arrays differ in length (3, 3, 2)',
    );
  });
});

describe("a diff's merged edges packed", () => {
  const merged = [
    { source: 0, target: 3, weight_a: 0.25, weight_b: null },
    { source: 1, target: 3, weight_a: null, weight_b: -1.5 },
    { source: 2, target: 4, weight_a: 1 / 3, weight_b: 2 / 3 },
  ];

  it('round-trip to typed arrays, a side without the edge as NaN, weights as float32', () => {
    const packed = packMergedEdges(merged);
    expect(packed.count).toBe(3);
    const arrays = unpackMergedEdges(packed, 5);
    expect(Array.from(arrays.source)).toEqual([0, 1, 2]);
    expect(Array.from(arrays.target)).toEqual([3, 3, 4]);
    expect(Array.from(arrays.weightA)).toEqual([0.25, Number.NaN, Math.fround(1 / 3)]);
    expect(Array.from(arrays.weightB)).toEqual([Number.NaN, -1.5, Math.fround(2 / 3)]);
    // The object form gives the same arrays.
    const fromObjects = mergedEdgeArrays({ nodes: new Array(5), edges: merged });
    const fromPacked = mergedEdgeArrays({ nodes: new Array(5), edges: [], packedEdges: packed });
    expect(fromPacked).toEqual(fromObjects);
  });

  it("are checked like a view's: node indices, lengths", () => {
    const packed = packMergedEdges(merged);
    expect(thrown(() => unpackMergedEdges(packed, 4))).toBe(
      "packed edges: edge 2 (2 → 4) names a node index ≥ the view's 4 nodes",
    );
    expect(thrown(() => unpackMergedEdges({ ...packed, count: 2 }, 5))).toBe(
      'packed edges: source holds 12 bytes, expected 8 (2 edges × 4)',
    );
  });
});

describe('graphs.view with edges: packed', () => {
  const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-packed-cache-'));
  let h: Harness;
  beforeAll(() => {
    h = harness(cacheRoot);
  });
  afterAll(async () => {
    await h.close();
    fs.rmSync(h.dir, { recursive: true, force: true });
    fs.rmSync(cacheRoot, { recursive: true, force: true });
  });

  it('carries the same edges as the plain view, as typed arrays once decoded', async () => {
    const trace = saveSynthetic(h.store, syntheticGraph(11, { nFeatures: 200, edgesPerRow: 20 }));
    for (const thresholds of [{}, { nodeThreshold: 0.95, edgeThreshold: 0.99 }]) {
      const plain = await h.client.call('graphs.view', { traceId: trace.id, ...thresholds });
      const packed = await h.client.call('graphs.view', {
        traceId: trace.id,
        ...thresholds,
        edges: 'packed',
      });
      expect(plain.packedEdges).toBeUndefined();
      expect(packed.edges).toEqual({ source: [], target: [], weight: [] });
      expect(packed.packedEdges?.count).toBe(plain.edges.source.length);
      expect(plain.edges.source.length).toBeGreaterThan(100);
      const view = decodeViewEdges(packed);
      expect(view.packedEdges).toBeUndefined();
      expect(view.edges.source).toBeInstanceOf(Uint32Array);
      expect(view.edges.weight).toBeInstanceOf(Float32Array);
      expect(Array.from(view.edges.source)).toEqual(plain.edges.source);
      expect(Array.from(view.edges.target)).toEqual(plain.edges.target);
      // The stored weights are Float32: the plain view's doubles are those values exactly.
      expect(Array.from(view.edges.weight)).toEqual(plain.edges.weight);
      expect(view.nodes).toEqual(plain.nodes);
    }
  });

  it('leaves a view without packed edges as it is', async () => {
    const trace = saveSynthetic(h.store, syntheticGraph(12));
    const plain = await h.client.call('graphs.view', { traceId: trace.id });
    const before = structuredClone(plain);
    expect(decodeViewEdges(plain)).toEqual(before);
  });
});
