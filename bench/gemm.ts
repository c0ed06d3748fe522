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
import { createSession, ort, providerExtras } from '../electron/engine/runtime/session.ts';
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

/** float32 → IEEE half bits (round to nearest even; the bench's values are small and normal). */
function toHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign; // flushed to zero: not met by the values used here
  const mant = x & 0x7fffff;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return h;
}

/**
 * A GPU provider's MatMul rate on device-resident operands (TFLOP/s, best of runs), for an
 * [m, k]·[k, n] product in float32 or float16: products are queued with their outputs left on
 * the device, and a small read-back of the last one waits for the queue.
 */
export async function measureDeviceGemm(
  provider: ProviderName,
  m: number,
  k = m,
  n = m,
  type: 'float32' | 'float16' = 'float32',
): Promise<number> {
  const g = new GraphBuilder('matmul-rate');
  g.input('a', type, [m, k]);
  g.input('b', type, [k, n]);
  g.output(g.matmul('a', 'b'), 'c', type, [m, n]);
  const probe = new GraphBuilder('read-back');
  probe.input('c', type, [m, n]);
  probe.output(probe.op('ReduceMax', ['c'], { keepdims: { i: 0 } }), 'm', type, []);
  const opts = { executionProviders: [provider], logSeverityLevel: 3 as const, ...providerExtras(provider) };
  const session = await ort.InferenceSession.create(g.serialize(), {
    ...opts,
    preferredOutputLocation: 'gpu-buffer' as const,
  });
  const wait = await ort.InferenceSession.create(probe.serialize(), opts);
  const device = deviceTensors(provider);
  const operand = (rows: number, cols: number): ort.Tensor => {
    const values = Float32Array.from(
      { length: rows * cols },
      (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5,
    );
    return type === 'float32'
      ? new ort.Tensor('float32', values, [rows, cols])
      : new ort.Tensor('float16', Uint16Array.from(values, toHalfBits), [rows, cols]);
  };
  try {
    const a = await device.upload(operand(m, k));
    const b = await device.upload(operand(k, n));
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 6; r++) {
      const reps = 4;
      const outs: ort.Tensor[] = [];
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) outs.push((await session.run({ a, b })).c);
      await wait.run({ c: outs[reps - 1] });
      const ms = (performance.now() - t0) / reps;
      for (const o of outs) device.dispose(o);
      if (r > 0) best = Math.min(best, ms);
    }
    device.dispose(a);
    device.dispose(b);
    return (2 * m * k * n) / (best / 1000) / 1e12;
  } finally {
    await session.release();
    await wait.release();
    await device.release();
  }
}
