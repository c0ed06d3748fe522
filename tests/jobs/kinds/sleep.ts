/**
 * Test-only job kind `sleep`: params {ms, step?, ignoreCancel?, busy?}. Reports progress every
 * step; stops at cancel unless ignoreCancel (then only terminate() stops it); busy: spins the
 * thread synchronously instead of awaiting timers (a job that cannot even see the cancel).
 * Its result names the worker thread that ran it (warm workers are reused) and the auto provider
 * it was told (CIRCUIT_AUTO_PROVIDER).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import type { JobContext, JobHandler, JsonValue } from '../../../electron/jobs/types.ts';

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext) {
    const p = raw as {
      ms: number;
      step?: number;
      ignoreCancel?: boolean;
      busy?: boolean;
      result?: JsonValue;
    };
    const step = p.step ?? 10;
    const n = Math.ceil(p.ms / step);
    for (let i = 0; i < n; i++) {
      if (!p.ignoreCancel) ctx.throwIfCancelled();
      if (p.busy) {
        const until = Date.now() + step;
        while (Date.now() < until) {
          // spin
        }
      } else {
        await delay(step);
      }
      ctx.progress({ phase: 'sleep', done: i + 1, total: n, unit: 'steps' });
    }
    return {
      result: p.result ?? {
        slept: p.ms,
        threads: ctx.threads,
        threadId,
        autoProvider: process.env.CIRCUIT_AUTO_PROVIDER ?? null,
      },
    };
  },
};

export default handler;
