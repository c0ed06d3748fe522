/**
 * The GPU data path's bookkeeping, run on the CPU provider: a device stand-in that keeps its
 * own copy of every tensor it is given (as device memory would, so a host array dropped after
 * an upload cannot leak into a run) and counts uploads and frees. A real GPU is checked by
 * bench/gpu-check.ts (CI has none).
 *
 * Checked: the graph equals the host-fed one; each resident weight crosses once for every
 * session of the model (forward, frozen, every backward top) and every prompt; the
 * backward's constants cross once per prompt, at its full length; the decoded unembedding is
 * still readable on the host; and everything uploaded is freed on close.
 */
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import type { DeviceTensors } from '../../../electron/engine/runtime/device-tensors.ts';
import type { ProviderName } from '../../../electron/engine/runtime/providers.ts';
import { ort } from '../../../electron/engine/runtime/session.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { prunedNodes, worstRowDifference } from '../../fixtures/graph-compare.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const PROMPTS = [
  [2, 651, 6037, 576, 2329, 10751, 26865, 603],
  [2, 651, 6037, 576, 2329, 10751, 1234, 603, 99],
];

class CopyingDevice implements DeviceTensors {
  readonly onDevice = true;
  uploadedBytes = 0;
  uploadMs = 0;
  readonly live = new Set<ort.Tensor>();
  readonly uploadsByShape = new Map<string, number>();
  freed = 0;
  released = false;
  constructor(readonly provider: ProviderName) {}
  async upload(host: ort.Tensor): Promise<ort.Tensor> {
    const data = host.data as Float32Array | BigInt64Array;
    const copy = new ort.Tensor(host.type as 'float32', data.slice() as Float32Array, [...host.dims]);
    this.live.add(copy);
    this.uploadedBytes += data.byteLength;
    const key = `${host.type}[${host.dims.join(',')}]`;
    this.uploadsByShape.set(key, (this.uploadsByShape.get(key) ?? 0) + 1);
    return copy;
  }
  dispose(tensor: ort.Tensor): void {
    if (!this.live.delete(tensor)) throw new Error('freed a tensor the device does not hold (or twice)');
    this.freed++;
  }
  async release(): Promise<void> {
    this.released = true;
  }
}

describe('device residency (GPU data path, on the CPU provider)', () => {
  it('uploads each weight once, the constants once per prompt, frees everything, and gives the same graph', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 64, maxFeatureNodes: 120 };
    const host = await Attributor.create(model, set);
    let device: CopyingDevice | undefined;
    const onDevice = await Attributor.create(model, set, {
      device: (p) => {
        device = new CopyingDevice(p);
        return device;
      },
    });
    try {
      const dev = device!;
      const weightUploads = dev.uploadedBytes;
      expect(weightUploads).toBeGreaterThan(0);
      expect(onDevice.forward.feeder.deviceBytes).toBe(weightUploads);
      expect(onDevice.forward.feeder.residentBytes).toBe(0); // host arrays dropped
      for (const prompt of PROMPTS) {
        const ids = prompt.map((t) => t % model.config.vocabSize);
        const before = new Map(dev.uploadsByShape);
        const a = await host.attribute(ids, settings);
        const b = await onDevice.attribute(ids, settings);
        expect(b.graph.adjacency).toEqual(a.graph.adjacency);
        // The backward's constants cross once per prompt, at its full length T (the graphs cut
        // them to each batch's t): one token-vector upload [T, d], though batches ran at several t.
        const d = model.config.hiddenSize;
        const tokenUploads = [...dev.uploadsByShape]
          .filter(([k]) => k.startsWith('float32[') && k.endsWith(`,${d}]`) && k.split(',').length === 2)
          .map(([k, c]) => [k, c - (before.get(k) ?? 0)] as const)
          .filter(([, c]) => c > 0);
        expect(tokenUploads).toEqual([[`float32[${ids.length},${d}]`, 1]]);
        const distinctT = new Set(b.selected.map((i) => b.prepared.space.featurePosition[i] + 1));
        expect(distinctT.size).toBeGreaterThan(1);
      }
      // No weight crossed again, and none was decoded into a host tensor for a run.
      expect(onDevice.forward.feeder.deviceBytes).toBe(weightUploads);
      expect(onDevice.forward.feeder.residentBytes).toBe(0);
      // The unembedding is still readable on the host (the logit head's copy), and right.
      const mean = await onDevice.forward.head.meanRow();
      const hostMean = await host.forward.head.meanRow();
      expect(Math.max(...mean.map((v, i) => Math.abs(v - hostMean[i])))).toBeLessThan(1e-6);
    } finally {
      await host.close();
      await onDevice.close();
    }
    expect(device!.live.size).toBe(0);
    expect(device!.freed).toBeGreaterThan(0);
    expect(device!.released).toBe(true);
    set.close();
    model.close();
  });

  it('after releaseBackwardSessions the backward is made again in the form then asked for, same graph', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 16, maxFeatureNodes: 100 };
    const ids = PROMPTS[0].map((t) => t % model.config.vocabSize);
    let device: CopyingDevice | undefined;
    const a = await Attributor.create(model, set, {
      device: (p) => {
        device = new CopyingDevice(p);
        return device;
      },
    });
    const d = model.config.hiddenSize;
    const tokenUploadShapes = (before: Map<string, number>) =>
      [...device!.uploadsByShape]
        .filter(([k, c]) => k.endsWith(`,${d}]`) && k.split(',').length === 2 && c > (before.get(k) ?? 0))
        .map(([k]) => k);
    try {
      let before = new Map(device!.uploadsByShape);
      const prompt = await a.attribute(ids, settings); // a device: the `prompt` form
      expect(tokenUploadShapes(before)).toEqual([`float32[${ids.length},${d}]`]);
      await prompt.prepared.runner.release();
      const live = device!.live.size;

      process.env.CIRCUIT_BACKWARD_CONSTANTS = 'per-t';
      await a.releaseBackwardSessions();
      before = new Map(device!.uploadsByShape);
      const perT = await a.attribute(ids, settings);
      // Remade in the per-t form: token vectors uploaded at several t, not once at T.
      expect(tokenUploadShapes(before).length).toBeGreaterThan(1);
      expect(perT.graph.adjacency).toEqual(prompt.graph.adjacency);
      await perT.prepared.runner.release();
      expect(device!.live.size).toBe(live); // the constants of both went; the weights stayed
    } finally {
      delete process.env.CIRCUIT_BACKWARD_CONSTANTS;
      await a.close();
      set.close();
      model.close();
    }
    expect(device!.live.size).toBe(0);
  });

  /**
   * The demo's graph (CLT and PLT) with `env` set while the second Attributor makes its backward
   * sessions equals the default one's exactly (the knob changes the graphs, not the rows).
   */
  /** The graph with `env` = `value` equals the default form's: exactly, or within `tolerance` of each row's scale. */
  async function expectSameGraphWith(
    env: string,
    value: string,
    batchSize: number,
    tolerance = 0,
  ): Promise<void> {
    const model = openModel(DEMO_DIR);
    const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize, maxFeatureNodes: 100 };
    const ids = PROMPTS[1].map((t) => t % model.config.vocabSize);
    for (const kind of ['clt', 'plt']) {
      const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', kind));
      const plain = await Attributor.create(model, set);
      const a = await plain.attribute(ids, settings); // backward sessions made here, without `env`
      process.env[env] = value;
      const other = await Attributor.create(model, set);
      try {
        const b = await other.attribute(ids, settings);
        expect(b.graph.adjacency.length, kind).toBe(a.graph.adjacency.length);
        if (tolerance === 0) expect(b.graph.adjacency, kind).toEqual(a.graph.adjacency);
        else expect(worstRowDifference(a.graph, b.graph), kind).toBeLessThan(tolerance);
        expect(a.graph.adjacency.some((v) => v !== 0)).toBe(true);
      } finally {
        delete process.env[env];
        await plain.close();
        await other.close();
        set.close();
      }
    }
    model.close();
  }

  it('the GPU providers’ select injection gives the scatter injection’s graph exactly', async () => {
    await expectSameGraphWith('CIRCUIT_BACKWARD_INJECTION', 'select', 48);
  });

  it('the GPU providers’ joined backward output (one download per run) gives the per-layer outputs’ graph exactly', async () => {
    // Batches of 7 over ~100 features and 5 logits: many tops (truncated graphs), the full one too.
    await expectSameGraphWith('CIRCUIT_BACKWARD_OUTPUTS', 'joined', 7);
  });

  it('rows gathered in the graph (GPU providers: no host scatter) give the host scatter’s graph exactly', async () => {
    // CLT: a feature is written at every layer from its own up, so its places are summed; PLT: one each.
    await expectSameGraphWith('CIRCUIT_BACKWARD_OUTPUTS', 'rows', 7);
  });

  it('the projections as 3-D MatMuls (a device bench variant) give the Gemms’ graph', async () => {
    await expectSameGraphWith('CIRCUIT_BACKWARD_PROJECTION', 'matmul', 48, 1e-5);
  });

  it('f16 projections: the graph builds and runs, within 1e-3 of each row’s scale, same pruned nodes', async () => {
    // Every active feature (no influence-ranked selection that rounding could reorder). What this
    // checks of f16's precision is limited: ONNX Runtime's CPU provider has no f16 Gemm, and of
    // the casts it puts around one it removes the f32→f16→f32 round trips of the activations;
    // only the demo's weights (inlined, folded to f16 and back) are rounded. A GPU's f16 products
    // (operands rounded, maybe f16 accumulation) are measured by the device bench's f16 variant.
    const model = openModel(DEMO_DIR);
    const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 48, maxFeatureNodes: 100_000 };
    const ids = PROMPTS[1].map((t) => t % model.config.vocabSize);
    for (const kind of ['clt', 'plt']) {
      const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', kind));
      const f32 = await Attributor.create(model, set);
      const a = await f32.attribute(ids, settings);
      vi.stubEnv('CIRCUIT_BACKWARD_PRECISION', 'f16');
      const f16 = await Attributor.create(model, set);
      try {
        const b = await f16.attribute(ids, settings);
        const worst = worstRowDifference(a.graph, b.graph);
        expect(worst, kind).toBeLessThan(1e-3);
        expect(worst, `${kind}: f16 operands must round (else this checks nothing)`).toBeGreaterThan(1e-6);
        expect(prunedNodes(b.graph), kind).toEqual(prunedNodes(a.graph));
      } finally {
        vi.unstubAllEnvs();
        await f32.close();
        await f16.close();
        set.close();
      }
    }
    model.close();
  });

  it('keeps an embedding past the GPU’s largest buffer on the host and traces the same graph', async () => {
    // Dawn refuses a buffer past its maxBufferSize (1 GiB on SwiftShader; gemma-2-2b's embedding
    // is 2.36 GB as float32): the stand-in refuses with Dawn's message past `limit` bytes.
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const embedBytes = model.config.vocabSize * model.config.hiddenSize * 4;
    const limited = (limit: number) => (p: ProviderName) => {
      const dev = new CopyingDevice(p);
      const upload = dev.upload.bind(dev);
      dev.upload = async (host) => {
        const bytes = (host.data as Float32Array).byteLength;
        if (bytes > limit)
          throw new Error(
            `WebGPU validation failed. Buffer size (${bytes}) exceeds the max buffer size limit (${limit}).`,
          );
        return upload(host);
      };
      return dev;
    };
    const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 64, maxFeatureNodes: 120 };
    const ids = PROMPTS[0].map((t) => t % model.config.vocabSize);
    const host = await Attributor.create(model, set);
    const warnings: string[] = [];
    const onDevice = await Attributor.create(model, set, {
      device: limited(embedBytes - 4),
      onWarning: (m) => warnings.push(m),
    });
    try {
      expect(onDevice.forward.compiled.headInGraph).toBe(false);
      expect(warnings.join('\n')).toMatch(
        /embedding \(.*GB\) is larger than this GPU's largest buffer .* stays on the host/,
      );
      const a = await host.attribute(ids, settings);
      const b = await onDevice.attribute(ids, settings);
      expect(b.selected).toEqual(a.selected);
      expect(worstRowDifference(a.graph, b.graph)).toBeLessThan(1e-5);
      // A layer weight past the limit cannot be a GPU input at all: a clear refusal.
      await expect(Attributor.create(model, set, { device: limited(1024) })).rejects.toThrow(
        /larger than this GPU's largest buffer .* trace on the CPU/,
      );
    } finally {
      await host.close();
      await onDevice.close();
      set.close();
      model.close();
    }
  });

  it('the GPU form’s constants at full length, cut to t in the graph, give the per-t constants’ graph exactly', async () => {
    await expectSameGraphWith('CIRCUIT_BACKWARD_CONSTANTS', 'prompt', 7);
  });
});
