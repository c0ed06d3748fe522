/**
 * The machine's float32 GEMM rate as ONNX Runtime's CPU provider sees it (and, in
 * `measureDeviceGemm`, a GPU provider's): one n×n×n MatMul
 * graph (both operands graph inputs, so nothing is pre-packed), one warm-up run, best of
 * `repeats`. Later benchmarks compare their FLOP rates against this figure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '../electron/engine/onnx/graph-builder.ts';
import { deviceTensors } from '../electron/engine/runtime/device-tensors.ts';
import type { ProviderName } from '../electron/engine/runtime/providers.ts';
import { createSession, ort } from '../electron/engine/runtime/session.ts';
import { randomTensor } from '../tests/fixtures/tiny-checkpoints.ts';

export interface GemmRate {
  n: number;
  threads: number;
  bestMs: number;
  gflops: number;
}

export async function measureGemm(n = 2048, repeats = 3, threads = 2): Promise<GemmRate> {
  const g = new GraphBuilder('gemm');
  const a = g.input('A', 'float32', [n, n]);
  const b = g.input('B', 'float32', [n, n]);
  g.output(g.matmul(a, b), 'C', 'float32', [n, n]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'circuit-bench-gemm-'));
  try {
    const file = path.join(dir, 'gemm.onnx');
    fs.writeFileSync(file, g.serialize());
    const { session } = await createSession(file, { provider: 'cpu', threads });
    try {
      const feeds = {
        A: new ort.Tensor('float32', randomTensor('bench/gemm/A', [n, n], 1), [n, n]),
        B: new ort.Tensor('float32', randomTensor('bench/gemm/B', [n, n], 1), [n, n]),
      };
      await session.run(feeds);
      let bestMs = Number.POSITIVE_INFINITY;
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        await session.run(feeds);
        bestMs = Math.min(bestMs, performance.now() - t0);
      }
      return { n, threads, bestMs, gflops: (2 * n ** 3) / (bestMs * 1e6) };
    } finally {
      await session.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A GPU provider's float32 MatMul rate on device-resident operands (TFLOP/s, best of runs):
 * products are queued with their outputs left on the device, and a small read-back of the
 * last one waits for the queue.
 */
export async function measureDeviceGemm(provider: ProviderName, n: number): Promise<number> {
  const g = new GraphBuilder('matmul-rate');
  g.input('a', 'float32', [n, n]);
  g.input('b', 'float32', [n, n]);
  g.output(g.matmul('a', 'b'), 'c', 'float32', [n, n]);
  const probe = new GraphBuilder('read-back');
  probe.input('c', 'float32', [n, n]);
  probe.output(probe.op('ReduceMax', ['c'], { keepdims: { i: 0 } }), 'm', 'float32', []);
  const opts = { executionProviders: [provider], logSeverityLevel: 3 as const };
  const session = await ort.InferenceSession.create(g.serialize(), {
    ...opts,
    preferredOutputLocation: 'gpu-buffer' as const,
  });
  const wait = await ort.InferenceSession.create(probe.serialize(), opts);
  const device = deviceTensors(provider);
  try {
    const values = Float32Array.from({ length: n * n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
    const a = await device.upload(new ort.Tensor('float32', values, [n, n]));
    const b = await device.upload(new ort.Tensor('float32', values, [n, n]));
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 6; r++) {
      const reps = 4;
      const outs: ort.Tensor[] = [];
      const t0 = performance.now();
      for (let k = 0; k < reps; k++) outs.push((await session.run({ a, b })).c);
      await wait.run({ c: outs[reps - 1] });
      const ms = (performance.now() - t0) / reps;
      for (const o of outs) device.dispose(o);
      if (r > 0) best = Math.min(best, ms);
    }
    device.dispose(a);
    device.dispose(b);
    return (2 * n ** 3) / (best / 1000) / 1e12;
  } finally {
    await session.release();
    await wait.release();
    await device.release();
  }
}
