/**
 * The GPU data path on a real WebGPU provider: ONNX Runtime's WebGPU kernels over SwiftShader,
 * Chromium's software Vulkan driver (tests/fixtures/software-webgpu.ts), so what runs is what
 * runs on a GPU: weights uploaded once and fed from device memory, the backward in its GPU form
 * (elementwise injection, rows gathered in the graph, the prompt's constants cut to t in the
 * graph, the source blocks built on the device), rows read back. Checked against the CPU provider's graph of the same prompt, as attribution.md's
 * correctness asks of any provider: every row within 1e-3 of its largest entry, the same nodes
 * after pruning.
 */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { ort } from '../../../electron/engine/runtime/session.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { prunedNodes, worstRowDifference } from '../../fixtures/graph-compare.ts';
import { useSoftwareWebGpu } from '../../fixtures/software-webgpu.ts';

type RunFn = (this: ort.InferenceSession, ...args: unknown[]) => Promise<unknown>;

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const PROMPT = [2, 651, 6037, 576, 2329, 10751, 26865, 603];
// Every active feature kept (no selection near a cut-off that rounding could tip), many batches.
const SETTINGS = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 16, maxFeatureNodes: 100_000 };

describe.skipIf(!useSoftwareWebGpu())('the GPU data path on WebGPU (SwiftShader)', () => {
  afterEach(() => vi.unstubAllEnvs());

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
        // Where the backward's source blocks come from at each run (input name → location).
        const sessionProto = (ort.InferenceSession as unknown as { prototype: { run: RunFn } }).prototype;
        const run = sessionProto.run;
        const sourceLocations = new Set<string>();
        sessionProto.run = async function (this: ort.InferenceSession, ...args: unknown[]) {
          for (const [name, x] of Object.entries(args[0] as Record<string, ort.Tensor>))
            if (name.startsWith('sources_')) sourceLocations.add(x.location);
          return run.apply(this, args);
        };
        const b = await gpu.attribute(ids, SETTINGS).finally(() => {
          sessionProto.run = run;
        });
        expect(b.selected).toEqual(a.selected);
        // The active features' encoder rows gathered on the device, from its resident encoders.
        expect(gpu.encoderRows.counts.read).toBe(0);
        expect(gpu.encoderRows.counts.gathered).toBeGreaterThan(0);
        expect(b.backward).toMatchObject({
          provider: 'webgpu',
          deviceWeightBytes: weightBytes,
          runs: a.backward.runs,
        });
        expect(b.backward.runs).toBeGreaterThan(2); // batches of 16
        expect(b.graph.adjacency.length).toBe(a.graph.adjacency.length);
        expect(a.graph.adjacency.some((v) => v !== 0)).toBe(true);
        expect(worstRowDifference(a.graph, b.graph)).toBeLessThan(1e-3);
        expect(prunedNodes(b.graph)).toEqual(prunedNodes(a.graph));

        // No weight crossed again; the prompt's constants crossed once, at full length (about one
        // [T, d] token block and the patterns, not one copy per t of the batches), and the [T, d,
        // n_l] source blocks not at all: built in device memory from their compact form.
        expect(gpu.forward.feeder.deviceBytes).toBe(weightBytes);
        const space = b.prepared.space;
        const constantBytes = gpu.forward.device.uploadedBytes - uploadedBefore;
        const sourceBytes = space.blocks.reduce((s, blk) => s + blk.vectorBytes, 0);
        const { hiddenSize: d, nHeads: H, nLayers: L } = model.config;
        const T = ids.length;
        expect(constantBytes).toBeGreaterThanOrEqual(4 * T * d);
        expect(constantBytes).toBeLessThanOrEqual(4 * (T * d + L * H * T * T + 4 * L * T));
        expect(constantBytes).toBeLessThan(sourceBytes / 4);
        expect([...sourceLocations]).toEqual(['gpu-buffer']);
      } finally {
        await cpu.close();
        await gpu.close();
        set.close();
        model.close();
      }
    });
  }

  it('keeps the weights resident by the device memory, not the host’s budget', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const ids = PROMPT.map((t) => t % model.config.vocabSize);
    let logits: Float32Array = new Float32Array(0);
    try {
      // A host budget that holds nothing (a big model on a small host) with a device that holds
      // everything: one resident graph, uploaded once, its host copies dropped.
      vi.stubEnv('CIRCUIT_RESIDENT_WEIGHTS_MB', '0');
      vi.stubEnv('CIRCUIT_DEVICE_MEMORY_MB', '1024');
      const fits = await ForwardPass.create(model, { transcoders: set, provider: 'webgpu' });
      try {
        expect(fits.deviceMemory).toMatchObject({
          source: 'CIRCUIT_DEVICE_MEMORY_MB',
          freeBytes: 1024 * 2 ** 20,
        });
        expect(fits.compiled.streamed).toBe(false);
        const uploaded = fits.device.uploadedBytes;
        expect(fits.feeder.deviceBytes).toBeGreaterThan(0);
        expect(fits.feeder.residentBytes).toBe(0);
        await fits.run(ids, ['logits']);
        logits = (await fits.run(ids, ['logits'])).get('logits')!.data;
        expect(fits.device.uploadedBytes).toBe(uploaded);
      } finally {
        await fits.close();
      }
      // A device too small for the layers: streamed per layer, as the CPU does on a small host.
      vi.stubEnv('CIRCUIT_DEVICE_MEMORY_MB', '0.01');
      const small = await ForwardPass.create(model, { transcoders: set, provider: 'webgpu' });
      try {
        expect(small.compiled.streamed).toBe(true);
        expect(small.feeder.deviceBytes).toBe(0);
        const streamed = (await small.run(ids, ['logits'])).get('logits')!.data;
        expect(streamed.length).toBe(logits.length);
        expect(Math.max(...streamed.map((v, i) => Math.abs(v - logits[i])))).toBeLessThan(1e-3);
      } finally {
        await small.close();
      }
    } finally {
      set.close();
      model.close();
    }
  });

  it('splits batches into runs that fit the device memory it is told of', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const ids = PROMPT.slice(0, 3).map((t) => t % model.config.vocabSize);
    const cpu = await Attributor.create(model, set);
    // 10 KiB: less than the weights, so nothing is left for activations: one row a run.
    vi.stubEnv('CIRCUIT_DEVICE_MEMORY_MB', '0.01');
    const gpu = await Attributor.create(model, set, { provider: 'webgpu' });
    try {
      const a = await cpu.attribute(ids, SETTINGS);
      const b = await gpu.attribute(ids, SETTINGS);
      expect(b.backward.deviceMemory).toMatchObject({
        freeBytes: 0.01 * 2 ** 20,
        source: 'CIRCUIT_DEVICE_MEMORY_MB',
      });
      expect(b.backward).toMatchObject({ rowLimit: 1, maxRows: 1 });
      expect(a.backward.maxRows).toBeGreaterThan(1);
      expect(b.backward.runs).toBe(b.logitRows.length + b.featureRows.size);
      expect(b.selected).toEqual(a.selected);
      expect(worstRowDifference(a.graph, b.graph)).toBeLessThan(1e-3);
    } finally {
      await cpu.close();
      await gpu.close();
      set.close();
      model.close();
    }
  });
});
