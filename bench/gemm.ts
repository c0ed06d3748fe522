/**
 * The machine's float32 GEMM rate as ONNX Runtime's CPU provider sees it: one n×n×n MatMul
 * graph (both operands graph inputs, so nothing is pre-packed), one warm-up run, best of
 * `repeats`. Later benchmarks compare their FLOP rates against this figure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '../electron/engine/onnx/graph-builder.ts';
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
