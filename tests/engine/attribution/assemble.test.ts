import { describe, expect, it } from 'vitest';
import { assembleGraph, columnRuns } from '../../../electron/engine/attribution/assemble.ts';
import type { SourceSpace } from '../../../electron/engine/attribution/sources.ts';
import { topIndices } from '../../../electron/engine/attribution/targets.ts';

/** A deterministic pseudo-random stream in [0, 1). */
function stream(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('topIndices', () => {
  it('equals a full sort (largest first, ties by lower index) for any k', () => {
    const rnd = stream(7);
    // Few distinct values: many ties.
    const values = Float32Array.from({ length: 5000 }, () => Math.floor(rnd() * 40) - 20);
    values[17] = Number.NEGATIVE_INFINITY;
    const sorted = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
    for (const k of [0, 1, 3, 10, 257, 5000, 6000]) {
      expect(topIndices(values, k)).toEqual(sorted.slice(0, Math.min(k, values.length)));
    }
  });
});

describe('assembleGraph', () => {
  const nLayers = 2;
  const T = 3;
  const nActive = 300;
  const nColumns = nActive + nLayers * T + T;
  const space = {
    nActive,
    errorOffset: nActive,
    tokenOffset: nActive + nLayers * T,
    nColumns,
    featureLayer: Int32Array.from({ length: nActive }, (_, i) => i % nLayers),
    featurePosition: Int32Array.from({ length: nActive }, (_, i) => 1 + (i % (T - 1))),
    featureIndex: Int32Array.from({ length: nActive }, (_, i) => 1000 + i),
    featureActivation: Float32Array.from({ length: nActive }, (_, i) => i / 10),
    blocks: [],
  } as SourceSpace;
  const rnd = stream(3);
  const row = () => Float32Array.from({ length: nColumns }, () => rnd() - 0.5);

  // Nearly every feature (block copies) and a scattered few (element-wise gather).
  for (const [name, selected] of [
    ['dense', Array.from({ length: nActive }, (_, i) => i).filter((i) => i % 37 !== 4)],
    ['sparse', Array.from({ length: 40 }, (_, i) => i * 7 + (i % 3))],
  ] as const) {
    it(`puts each selected row's source columns in graph order (${name} selection)`, () => {
      const featureRows = new Map(selected.map((i) => [i, row()]));
      const logitRows = [row(), row()];
      const logits = [
        { tokenId: 5, prob: 0.6 },
        { tokenId: 9, prob: 0.3 },
      ];
      const g = assembleGraph(
        { space, cache: { nLayers, T } },
        [...selected],
        featureRows,
        logitRows,
        logits,
        [2, 5, 7],
        undefined,
      );
      const nSel = selected.length;
      const N = nSel + nLayers * T + T + logits.length;
      expect(g.adjacency.length).toBe(N * N);
      const expectRow = (graphRow: number, source: Float32Array) => {
        const want = [...selected.map((c) => source[c]), ...source.subarray(nActive)];
        expect(Array.from(g.adjacency.subarray(graphRow * N, graphRow * N + nSel + nLayers * T + T))).toEqual(
          want,
        );
        // Error and token rows, and every logit column, stay zero.
        expect(
          g.adjacency
            .subarray(graphRow * N + nSel + nLayers * T + T, (graphRow + 1) * N)
            .every((v) => v === 0),
        ).toBe(true);
      };
      for (const [r, i] of selected.entries()) expectRow(r, featureRows.get(i)!);
      for (const k of [0, 1]) expectRow(nSel + nLayers * T + T + k, logitRows[k]);
      for (let r = nSel; r < nSel + nLayers * T + T; r++) {
        expect(g.adjacency.subarray(r * N, (r + 1) * N).every((v) => v === 0)).toBe(true);
      }
      expect(Array.from(g.nodes.features.index)).toEqual(selected.map((i) => 1000 + i));
      expect(Array.from(g.nodes.logits.tokenId)).toEqual([5, 9]);
    });
  }

  it('copies runs only when they are long', () => {
    expect(Array.from(columnRuns(Array.from({ length: 100 }, (_, i) => i + 10)) ?? [])).toEqual([10, 0, 100]);
    expect(
      Array.from(
        columnRuns([
          ...Array.from({ length: 50 }, (_, i) => i),
          ...Array.from({ length: 50 }, (_, i) => 60 + i),
        ]) ?? [],
      ),
    ).toEqual([0, 0, 50, 60, 50, 50]);
    expect(columnRuns(Array.from({ length: 100 }, (_, i) => i * 2))).toBeNull();
  });
});
