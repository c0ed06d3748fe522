/**
 * Test-only job kind `native`: params {runs, seconds, ignoreCancel?}. Runs an ONNX Runtime
 * session `runs` times (one thread), each run a chain of [1024, 1024] products sized to take
 * about `seconds` here (timed on a short chain first): a job that spends its time inside
 * native code, as a trace of a real model does (a single run takes seconds there). Reports progress as each run starts (`detail.runMs`: the
 * last run's time); checks the cancel between runs unless ignoreCancel. Its result names the
 * worker thread.
 */
import { threadId } from 'node:worker_threads';
import { GraphBuilder } from '../../../electron/engine/onnx/graph-builder.ts';
import { createSession, ort, runSession } from '../../../electron/engine/runtime/session.ts';
import type { JobContext, JobHandler, JsonValue } from '../../../electron/jobs/types.ts';

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext) {
    const p = raw as { runs: number; seconds: number; ignoreCancel?: boolean };
    const n = 1024;
    // 1/n keeps the chain's values bounded: (J/n)^k = J/n for the all-ones matrix J
    const x = new ort.Tensor('float32', new Float32Array(n * n).fill(1 / n), [n, n]);
    const chain = async (matmuls: number) => {
      const g = new GraphBuilder('chain');
      g.input('x', 'float32', [n, n]);
      let y = 'x';
      for (let i = 0; i < matmuls; i++) y = g.op('MatMul', [y, 'x']);
      g.output(y, 'y', 'float32', [n, n]);
      return (await createSession(g.serialize(), { threads: 1 })).session;
    };
    const probe = await chain(8);
    await runSession(probe, { x });
    const t = performance.now();
    await runSession(probe, { x });
    const perMatmulMs = (performance.now() - t) / 8;
    await probe.release();
    const session = await chain(Math.max(8, Math.round((p.seconds * 1000) / perMatmulMs)));
    let runMs = 0;
    for (let i = 0; i < p.runs; i++) {
      if (!p.ignoreCancel) ctx.throwIfCancelled();
      ctx.progress({ phase: 'native', done: i, total: p.runs, unit: 'runs', detail: { runMs } });
      const t0 = performance.now();
      await runSession(session, { x });
      runMs = performance.now() - t0;
    }
    await session.release();
    return { result: { runs: p.runs, runMs, threadId } };
  },
};

export default handler;
