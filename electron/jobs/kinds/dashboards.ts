/**
 * Job kind `dashboards`: feature dashboards over a corpus (engine/dashboards). Params:
 * DashboardsJobParams, the engine's DashboardOptions (model, transcoders, corpus, topK, context,
 * window, maxTokens, layers, reservoir, provider, cacheRoot, checkpointEvery…) plus `out`
 * (JSONL, written atomically); `checkpoint` defaults to `<out>.checkpoint`.
 *
 * Resume: the job checkpoints its accumulator; a job stopped by a shutdown keeps its
 * checkpoint, and the same job run again continues after its last completed window unless
 * `resume` is false; a cancelled job's checkpoint is deleted. Without `out` the records travel
 * as the payload (for the caller, e.g. the store's features repository).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AtomicJsonlWriter } from '../../engine/dashboards/records.ts';
import { type DashboardOptions, runDashboards } from '../../engine/dashboards/run.ts';
import type { FeatureRecord } from '../../engine/dashboards/types.ts';
import { EngineError, isEngineError } from '../../engine/errors.ts';
import { providerChoice } from '../../engine/runtime/providers.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { objectParams } from './params.ts';

export interface DashboardsJobParams extends Omit<DashboardOptions, 'threads'> {
  /** The records as JSONL (absent: they travel as the payload). */
  out?: string;
}

/** The params' shape; the values are runDashboards' to check. */
function dashboardsJobParams(raw: JsonValue): DashboardsJobParams {
  const v = objectParams(raw, ['model', 'transcoders', 'corpus'], ['out', 'checkpoint', 'cacheRoot']);
  const p = v as unknown as DashboardsJobParams;
  return v.provider === undefined ? p : { ...p, provider: providerChoice(v.provider) };
}

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const { out, ...options } = dashboardsJobParams(raw);
    const checkpoint = options.checkpoint ?? (out ? `${out}.checkpoint` : undefined);
    if (out && !fs.existsSync(path.dirname(path.resolve(out)))) {
      throw new EngineError(
        'argument',
        `the folder of out does not exist: ${path.dirname(path.resolve(out))}`,
        {
          field: 'out',
        },
      );
    }
    const resume = options.resume !== false;
    const writer = out ? new AtomicJsonlWriter(out) : null;
    const records: FeatureRecord[] = [];
    try {
      const summary = await runDashboards(
        { ...options, threads: ctx.threads, checkpoint, resume },
        {
          signal: ctx.signal,
          onWarning: ctx.log,
          onProgress: (x) =>
            ctx.progress({
              phase: x.phase,
              done: x.done,
              total: x.total,
              unit: x.unit,
              etaSeconds: x.etaSeconds,
              detail: {
                ...(x.windows !== undefined ? { windows: x.windows } : {}),
                ...(x.tokensPerSecond !== undefined ? { tokensPerSecond: x.tokensPerSecond } : {}),
                ...(x.estimated !== undefined ? { estimated: x.estimated } : {}),
              },
            }),
          onRecord: (r) => {
            if (writer) writer.write(r);
            else records.push(r);
          },
        },
      );
      writer?.commit();
      return {
        result: { ...summary, out: out ? path.resolve(out) : null } as unknown as JsonValue,
        payload: writer ? undefined : { records },
      };
    } catch (e) {
      writer?.abort();
      // a user cancel discards the run; a shutdown keeps the checkpoint for resume
      if (isEngineError(e) && e.code === 'cancelled' && ctx.signal.reason !== 'shutdown' && checkpoint) {
        fs.rmSync(checkpoint, { force: true });
      }
      throw e;
    }
  },
};

export default handler;
