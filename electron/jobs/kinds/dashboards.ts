/**
 * Job kind `dashboards`: feature dashboards over a corpus (engine/dashboards). Params: the
 * DashboardOptions fields (model, transcoders, corpus, topK, context, window, maxTokens,
 * layers, reservoir, provider, cacheRoot, checkpointEvery…) plus `out` (JSONL, written
 * atomically) and optionally `checkpoint` (default `<out>.checkpoint`).
 *
 * Resume: the job checkpoints its accumulator; a job interrupted by a shutdown and requeued
 * with resume continues after its last completed window. A retry (requeue without resume)
 * starts over; a cancelled job's checkpoint is deleted. Without `out` the records travel as
 * the payload (for the pool's onResult, e.g. the store's features repository).
 */
import fs from 'node:fs';
import path from 'node:path';
import { AtomicJsonlWriter } from '../../engine/dashboards/records.ts';
import { runDashboards } from '../../engine/dashboards/run.ts';
import type { FeatureRecord } from '../../engine/dashboards/types.ts';
import { EngineError, isEngineError } from '../../engine/errors.ts';
import type { ProviderChoice } from '../../engine/runtime/providers.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { asParams, optInts, optNum, optStr, str } from './params.ts';

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const p = asParams(raw);
    const out = optStr(p, 'out');
    const checkpoint = optStr(p, 'checkpoint') ?? (out ? `${out}.checkpoint` : undefined);
    if (out && !fs.existsSync(path.dirname(path.resolve(out)))) {
      throw new EngineError(
        'argument',
        `the folder of out does not exist: ${path.dirname(path.resolve(out))}`,
        {
          field: 'out',
        },
      );
    }
    const resume = ctx.resume || (ctx.attempt <= 1 && p.resume !== false);
    const writer = out ? new AtomicJsonlWriter(out) : null;
    const records: FeatureRecord[] = [];
    try {
      const summary = await runDashboards(
        {
          model: str(p, 'model'),
          transcoders: str(p, 'transcoders'),
          corpus: str(p, 'corpus'),
          topK: optNum(p, 'topK'),
          context: optNum(p, 'context'),
          window: optNum(p, 'window'),
          maxTokens: optNum(p, 'maxTokens'),
          layers: optInts(p, 'layers'),
          reservoir: optNum(p, 'reservoir'),
          histogramBins: optNum(p, 'histogramBins'),
          logitK: optNum(p, 'logitK'),
          format: optStr(p, 'format') as 'text' | 'jsonl' | undefined,
          split: optStr(p, 'split') as 'line' | 'paragraph' | undefined,
          bosId: optNum(p, 'bosId'),
          provider: (optStr(p, 'provider') ?? 'cpu') as ProviderChoice,
          threads: ctx.threads,
          cacheRoot: optStr(p, 'cacheRoot'),
          checkpoint,
          checkpointEvery: optNum(p, 'checkpointEvery'),
          resume,
          seed: optNum(p, 'seed'),
        },
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
