/**
 * The GPU data path on a real WebGPU provider: ONNX Runtime's WebGPU kernels over SwiftShader,
 * Chromium's software Vulkan driver (tests/fixtures/software-webgpu.ts), so what runs is what
 * runs on a GPU: weights uploaded once and fed from device memory, the backward in its GPU form
 * (elementwise injection, one joined output, the prompt's constants cut to t in the graph), rows
 * read back. Checked against the CPU provider's graph of the same prompt, as attribution.md's
 * correctness asks of any provider: every row within 1e-3 of its largest entry, the same nodes
 * after pruning.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import type { RawAttributionGraph } from '../../../electron/engine/attribution/graph-types.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { pruneGraph } from '../../../electron/engine/pruning/index.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { useSoftwareWebGpu } from '../../fixtures/software-webgpu.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const PROMPT = [2, 651, 6037, 576, 2329, 10751, 26865, 603];
// Every active feature kept (no selection near a cut-off that rounding could tip), many batches.
const SETTINGS = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 16, maxFeatureNodes: 100_000 };

/** Largest |a − b| of each row over that row's largest |a|, the worst row. */
function worstRowDifference(a: RawAttributionGraph, b: RawAttributionGraph): number {
  const n = Math.round(Math.sqrt(a.adjacency.length));
  expect(n * n).toBe(a.adjacency.length);
  let worst = 0;
  for (let r = 0; r < n; r++) {
    let scale = 0;
    let diff = 0;
    for (let c = 0; c < n; c++) {
      scale = Math.max(scale, Math.abs(a.adjacency[r * n + c]));
      diff = Math.max(diff, Math.abs(a.adjacency[r * n + c] - b.adjacency[r * n + c]));
    }
    if (scale > 0) worst = Math.max(worst, diff / scale);
  }
  return worst;
}

const pruned = (g: RawAttributionGraph) => [
  ...pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 }).keptNodes,
];

describe.skipIf(!useSoftwareWebGpu())('the GPU data path on WebGPU (SwiftShader)', () => {
  for (const kind of ['clt', 'plt']) {
    it(`traces the demo (${kind}) as the CPU does, from device-resident weights and constants`, async () => {
      const model = openModel(DEMO_DIR);
      const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', kind));
      const ids = PROMPT.map((t) => t % model.config.vocabSize);
      const cpu = await Attributor.create(model, set);
      const gpu = await Attributor.create(model, set, { provider: 'webgpu' });
      try {
        expect(gpu.provider).toBe('webgpu');
        expect(gpu.forward.device.onDevice).toBe(true);
        const weightBytes = gpu.forward.feeder.deviceBytes;
        expect(weightBytes).toBeGreaterThan(0);
        expect(gpu.forward.feeder.residentBytes).toBe(0); // host copies dropped after upload

        const a = await cpu.attribute(ids, SETTINGS);
        const uploadedBefore = gpu.forward.device.uploadedBytes;
        const b = await gpu.attribute(ids, SETTINGS);
        expect(b.selected).toEqual(a.selected);
        expect(b.backward).toMatchObject({
          provider: 'webgpu',
          deviceWeightBytes: weightBytes,
          runs: a.backward.runs,
        });
        expect(b.backward.runs).toBeGreaterThan(2); // batches of 16
        expect(b.graph.adjacency.length).toBe(a.graph.adjacency.length);
        expect(a.graph.adjacency.some((v) => v !== 0)).toBe(true);
        expect(worstRowDifference(a.graph, b.graph)).toBeLessThan(1e-3);
        expect(pruned(b.graph)).toEqual(pruned(a.graph));

        // No weight crossed again; the prompt's constants crossed once, at full length: about one
        // [T, d] token block plus the [T, d, n_l] source blocks, not one copy per t of the batches.
        expect(gpu.forward.feeder.deviceBytes).toBe(weightBytes);
        const space = b.prepared.space;
        const constantBytes = gpu.forward.device.uploadedBytes - uploadedBefore;
        const sourceBytes = space.blocks.reduce((s, blk) => s + blk.vectors.byteLength, 0);
        expect(constantBytes).toBeGreaterThanOrEqual(sourceBytes);
        expect(constantBytes).toBeLessThan(1.5 * sourceBytes + 4 * ids.length * model.config.hiddenSize * 8);
      } finally {
        await cpu.close();
        await gpu.close();
        set.close();
        model.close();
      }
    });
  }
});
