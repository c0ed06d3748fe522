/**
 * Traces: started (a trace row and its job, queued), cancelled, traced again, deleted and
 * restored, tagged; and how a trace job runs (`traceJobRun`, one of the queue's runs).
 */
import {
  DEFAULT_TRACE_SETTINGS,
  mergeTraceSettings,
  type TraceSettings,
} from '../../engine/attribution/defaults.ts';
import { settleJobDevice } from '../../jobs/kinds/index.ts';
import type { JobRecord } from '../../store/jobs.ts';
import type { TraceRecord } from '../../store/types.ts';
import { type DomainHandlers, type HandlerContext, type ServiceContext, traceUpdated } from '../context.ts';
import { ApiError } from '../errors.ts';
import { checkTraceTargets } from '../model-tokens.ts';
import { type JobQueue, statusOutcomes } from '../queue.ts';

export function tracesHandlers(ctx: HandlerContext): DomainHandlers<'traces'> {
  return {
    'traces.start': (p) => {
      if (p.prompt === undefined && p.tokenIds === undefined) {
        throw new ApiError('invalid_params', 'invalid params: give prompt or tokenIds', { field: 'prompt' });
      }
      if (p.prompt !== undefined && p.tokenIds !== undefined) {
        throw new ApiError('invalid_params', 'invalid params: give prompt or tokenIds, not both', {
          field: 'tokenIds',
        });
      }
      const model = ctx.store.models.get(p.modelId);
      if (!model.valid) {
        const first = model.validation.problems[0];
        throw new ApiError(
          'conflict',
          `model ${model.id} (${model.name}) did not pass validation${first ? `: ${first.message}` : ''}; fix it and run models.validate`,
          { field: 'modelId' },
        );
      }
      const projectId = p.projectId ?? ctx.store.projects.ensureDefault().id;
      ctx.store.projects.get(projectId);
      checkTraceTargets(p.settings?.targets, model);
      return enqueueTrace(ctx, {
        projectId,
        modelId: model.id,
        transcoderSetId: model.transcoderSetId,
        prompt: p.prompt ?? '',
        tokenIds: p.tokenIds ?? null,
        settings: mergeTraceSettings(DEFAULT_TRACE_SETTINGS, p.settings),
        tags: p.tags,
        notes: p.notes,
      });
    },
    'traces.get': (p) => ({ ...ctx.store.traces.get(p.id), views: ctx.store.graphs.listViews(p.id) }),
    'traces.list': (p) => ctx.store.traces.list(p),
    'traces.cancel': async (p) => {
      const t = ctx.store.traces.get(p.id);
      if (t.status === 'queued') {
        for (const j of ctx.store.jobs.activeForTrace(t.id)) ctx.store.jobs.cancel(j.id);
        return traceUpdated(
          ctx,
          ctx.store.traces.setStatus(t.id, 'cancelled', { progress: null, finishedAt: ctx.store.now() }),
        );
      }
      if (t.status === 'running' && ctx.queue.running?.traceId === t.id) {
        await ctx.queue.stop('cancel', 5000);
        return ctx.store.traces.get(t.id);
      }
      throw new ApiError(
        'conflict',
        `trace ${t.id} is ${t.status}; only queued or running traces can be cancelled`,
        {
          field: 'id',
        },
      );
    },
    'traces.retrace': (p) => {
      const t = ctx.store.traces.get(p.id);
      if (t.source !== 'trace' || t.modelId === null) {
        throw new ApiError('unsupported', `trace ${t.id} has no registered model to trace again`, {
          field: 'id',
        });
      }
      const model = ctx.store.models.get(t.modelId);
      const settings = mergeTraceSettings(t.settings, p.settings); // keeps the trace's targets unless given
      checkTraceTargets(settings.targets, model);
      return enqueueTrace(ctx, {
        projectId: p.projectId ?? t.projectId,
        modelId: model.id,
        transcoderSetId: model.transcoderSetId,
        prompt: t.prompt,
        tokenIds: t.tokenIds,
        settings,
        tags: t.tags,
        notes: t.notes,
      });
    },
    'traces.delete': async (p) => {
      const t = ctx.store.traces.get(p.id);
      if (ctx.queue.running?.traceId === t.id) await ctx.queue.stop('cancel', 5000);
      else if (t.status === 'queued') {
        for (const j of ctx.store.jobs.activeForTrace(t.id)) ctx.store.jobs.cancel(j.id);
        ctx.store.traces.setStatus(t.id, 'cancelled', { finishedAt: ctx.store.now() });
      }
      const permanent = p.permanent ?? false;
      if (permanent) ctx.store.purgeTrace(t.id);
      else ctx.store.traces.softDelete(t.id);
      ctx.emit('trace.deleted', { traceId: t.id, permanent });
      return { id: t.id, permanent };
    },
    'traces.restore': (p) => traceUpdated(ctx, ctx.store.traces.restore(p.id)),
    'traces.duplicate': (p) => {
      if (p.projectId !== undefined) ctx.store.projects.get(p.projectId);
      return traceUpdated(ctx, ctx.store.duplicateTrace(p.id, { projectId: p.projectId }));
    },
    'traces.update': (p) => {
      if (p.projectId !== undefined) ctx.store.projects.get(p.projectId);
      return traceUpdated(ctx, ctx.store.traces.update(p.id, { notes: p.notes, projectId: p.projectId }));
    },
    'traces.tag': (p) => {
      ctx.store.traces.get(p.id);
      ctx.store.db.transaction(() => {
        if (p.add?.length) ctx.store.traces.addTags(p.id, p.add);
        if (p.remove?.length) ctx.store.traces.removeTags(p.id, p.remove);
      })();
      return traceUpdated(ctx, ctx.store.traces.get(p.id));
    },
    'traces.tags': () => ctx.store.traces.tags(),
  };
}

/** Queues a trace (its job's device settled first: an `auto` trace's provider is probed once per process). */
async function enqueueTrace(
  ctx: HandlerContext,
  t: {
    projectId: number;
    modelId: number;
    transcoderSetId: number | null;
    prompt: string;
    tokenIds: number[] | null;
    settings: TraceSettings;
    tags?: string[];
    notes?: string;
  },
): Promise<TraceRecord> {
  const device = await settleJobDevice(t.settings.provider);
  const id = ctx.store.db
    .transaction(() => {
      const traceId = ctx.store.traces.create({ ...t, source: 'trace', status: 'queued' });
      ctx.store.jobs.enqueue({
        kind: 'trace',
        device,
        params: { traceId },
        traceId,
      });
      return traceId;
    })
    .immediate();
  const trace = traceUpdated(ctx, ctx.store.traces.get(id));
  ctx.queue.kick();
  return trace;
}

/** Traces a queued trace on the compute backend and saves its graph whole. */
export function traceJobRun(ctx: ServiceContext) {
  return async (job: JobRecord, queue: JobQueue): Promise<void> => {
    const { store } = ctx;
    const trace = job.traceId === null ? null : store.traces.find(job.traceId);
    if (trace?.status !== 'queued' || trace.deletedAt !== null) {
      store.jobs.cancel(job.id); // the trace is no longer queued
      return;
    }
    const model = trace.modelId === null ? null : store.models.find(trace.modelId);
    if (!model) {
      store.jobs.fail(job.id, { code: 'not_found', message: 'the model is no longer registered' });
      traceUpdated(
        ctx,
        store.traces.setStatus(trace.id, 'failed', {
          error: { code: 'not_found', message: 'the model of this trace is no longer registered' },
          finishedAt: store.now(),
        }),
      );
      return;
    }
    const work = {
      traceId: trace.id,
      projectId: trace.projectId,
      cancelMessage: `trace ${trace.id} was cancelled`,
    };
    const outcomes = statusOutcomes(store.traces, trace.id, (t) => traceUpdated(ctx, t));
    await queue.run(job, work, outcomes, async (running) => {
      traceUpdated(
        ctx,
        store.traces.setStatus(trace.id, 'running', {
          startedAt: store.now(),
          progress: null,
          error: null,
          finishedAt: null,
        }),
      );
      const write = queue.throttle((progress) => store.traces.setProgress(trace.id, progress));
      const out = await ctx.compute.trace(
        {
          checkpointDir: model.checkpointDir,
          transcoderDir: model.transcoderDir,
          prompt: trace.prompt,
          tokenIds: trace.tokenIds,
          settings: trace.settings,
        },
        {
          signal: running.controller.signal,
          onProgress: (progress) => {
            write(progress);
            ctx.emit('trace.progress', { traceId: trace.id, progress });
          },
        },
      );
      if (running.controller.signal.aborted) throw running.controller.signal.reason;
      let saved = store.saveTrace({
        traceId: trace.id,
        raw: out.raw,
        views: [{ pruned: out.pruned }],
        timings: out.timingsMs,
        tokenIds: out.tokenIds,
      });
      if (saved.prompt === '')
        saved = store.traces.update(saved.id, { prompt: out.raw.nodes.promptTokens.join('') });
      store.jobs.complete(job.id, { traceId: trace.id });
      traceUpdated(ctx, saved);
    });
  };
}
