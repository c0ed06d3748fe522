/**
 * Interventions on a finished trace: checked (every error the worker would give later, as a
 * readable one now), queued ahead of traces, cancelled, deleted; and how an intervention job
 * runs (`interventionJobRun`, one of the queue's runs).
 */
import { realLogitTokens } from '../../engine/attribution/target-spec.ts';
import { featureNodeId } from '../../engine/intervene/intervention-run.ts';
import { settleJobDevice } from '../../jobs/kinds/index.ts';
import type { JobRecord } from '../../store/jobs.ts';
import type { Store } from '../../store/store.ts';
import type { FeatureEdit, InterventionSpec, TraceRecord } from '../../store/types.ts';
import {
  type DomainHandlers,
  type HandlerContext,
  interventionUpdated,
  type ServiceContext,
} from '../context.ts';
import { ApiError } from '../errors.ts';
import { type JobQueue, statusOutcomes } from '../queue.ts';
import { nodeIndexById } from '../view.ts';

/** Interventions run before queued traces: they take seconds and someone is waiting. */
const INTERVENTION_PRIORITY = 1;

function describeEdit(e: FeatureEdit): string {
  const id = featureNodeId(e.layer, e.feature, e.position);
  if (e.mode === 'ablate') return `ablate ${id}`;
  return e.mode === 'scale' ? `scale ${id} ×${e.value}` : `set ${id} = ${e.value}`;
}

/** "ablate 2_117_5, scale 3_40_7 ×2 (closed loop)", at most 200 characters. */
function describeIntervention(spec: InterventionSpec): string {
  const loop = spec.loop === 'open' ? 'open loop' : 'closed loop';
  const edits = spec.edits.map(describeEdit).join(', ');
  const text = `${edits} (${loop})`;
  return text.length <= 200 ? text : `${edits.slice(0, 180)}… (${loop})`;
}

export function interventionsHandlers(ctx: HandlerContext): DomainHandlers<'interventions'> {
  return {
    'interventions.start': async (p) => {
      const trace = ctx.store.traces.get(p.traceId);
      const spec: InterventionSpec = {
        loop: p.loop ?? 'closed',
        edits: p.edits,
        freezeAttention: p.freezeAttention ?? false,
        generate: p.generate ?? 0,
        top: p.top ?? 10,
      };
      checkIntervention(ctx.store, trace, spec);
      const device = await settleJobDevice(trace.settings.provider);
      const id = ctx.store.db
        .transaction(() => {
          const interventionId = ctx.store.interventions.create(
            trace.id,
            p.label?.trim() || describeIntervention(spec),
            spec,
          );
          ctx.store.jobs.enqueue({
            kind: 'intervene',
            device,
            params: { interventionId },
            priority: INTERVENTION_PRIORITY,
            traceId: trace.id,
          });
          return interventionId;
        })
        .immediate();
      const r = interventionUpdated(ctx, ctx.store.interventions.get(id));
      ctx.queue.kick();
      return r;
    },
    'interventions.list': (p) => {
      ctx.store.traces.get(p.traceId);
      return ctx.store.interventions.list(p.traceId);
    },
    'interventions.get': (p) => ctx.store.interventions.get(p.id),
    'interventions.cancel': async (p) => {
      const iv = ctx.store.interventions.get(p.id);
      if (iv.status === 'queued') {
        cancelQueuedIntervention(ctx.store, iv.id);
        return interventionUpdated(
          ctx,
          ctx.store.interventions.setStatus(iv.id, 'cancelled', {
            progress: null,
            finishedAt: ctx.store.now(),
          }),
        );
      }
      if (iv.status === 'running' && ctx.queue.running?.interventionId === iv.id) {
        await ctx.queue.stop('cancel', 5000);
        return ctx.store.interventions.get(iv.id);
      }
      throw new ApiError(
        'conflict',
        `intervention ${iv.id} is ${iv.status}; only queued or running interventions can be cancelled`,
        { field: 'id' },
      );
    },
    'interventions.delete': async (p) => {
      const iv = ctx.store.interventions.get(p.id);
      if (ctx.queue.running?.interventionId === iv.id) await ctx.queue.stop('cancel', 5000);
      else if (iv.status === 'queued') cancelQueuedIntervention(ctx.store, iv.id);
      const last = ctx.store.interventions.find(iv.id) ?? iv;
      ctx.store.interventions.delete(iv.id);
      ctx.emit('intervention.updated', { intervention: last, deleted: true });
      return { id: iv.id, traceId: iv.traceId };
    },
  };
}

/** Everything the worker would otherwise fail on later, as readable errors now. */
function checkIntervention(store: Store, trace: TraceRecord, spec: InterventionSpec): void {
  if (trace.source !== 'trace' || trace.modelId === null || trace.transcoderSetId === null) {
    throw new ApiError(
      'unsupported',
      `trace ${trace.id} has no registered model to run interventions on${trace.source === 'import' ? ' (it is an imported graph)' : ''}`,
      { field: 'traceId' },
    );
  }
  if (trace.status !== 'done' || !trace.tokenIds) {
    throw new ApiError(
      'conflict',
      `trace ${trace.id} is ${trace.status}; interventions need a finished trace`,
      {
        field: 'traceId',
      },
    );
  }
  const model = store.models.find(trace.modelId);
  if (!model) {
    throw new ApiError('conflict', `the model of trace ${trace.id} is no longer registered`, {
      field: 'traceId',
    });
  }
  if (!model.valid) {
    throw new ApiError(
      'conflict',
      `model ${model.id} (${model.name}) did not pass validation; fix it and run models.validate`,
      { field: 'traceId' },
    );
  }
  const set = store.models.getTranscoderSet(trace.transcoderSetId);
  const T = trace.tokenIds.length;
  spec.edits.forEach((e, i) => {
    const bad = (field: string, message: string) => {
      throw new ApiError('invalid_params', `invalid params: edits[${i}].${field} ${message}`, {
        field: `edits[${i}].${field}`,
      });
    };
    if (e.layer >= set.nLayers) bad('layer', `is ${e.layer}; the transcoders have ${set.nLayers} layers`);
    if (e.feature >= set.dTranscoder)
      bad('feature', `is ${e.feature}; the transcoders have ${set.dTranscoder} features per layer`);
    if (e.position < 1 || e.position >= T)
      bad(
        'position',
        `is ${e.position}; it must be in [1, ${T}) (position 0 is BOS, where features are zeroed)`,
      );
  });
  const seen = new Set<string>();
  spec.edits.forEach((e, i) => {
    const id = featureNodeId(e.layer, e.feature, e.position);
    if (seen.has(id)) {
      throw new ApiError('invalid_params', `invalid params: edits[${i}] edits ${id} a second time`, {
        field: `edits[${i}]`,
      });
    }
    seen.add(id);
  });
  if (spec.loop === 'open' && (spec.freezeAttention || spec.generate > 0)) {
    throw new ApiError(
      'invalid_params',
      'invalid params: freezeAttention and generate apply to the closed loop only (the open loop freezes everything already)',
      { field: spec.generate > 0 ? 'generate' : 'freezeAttention' },
    );
  }
  if (spec.freezeAttention && spec.generate > 0) {
    throw new ApiError(
      'invalid_params',
      'invalid params: a continuation cannot keep attention frozen (new positions have no prompt pattern); use one or the other',
      { field: 'generate' },
    );
  }
  const maxPositions = Number((model.validation.model as { maxPositions?: number } | null)?.maxPositions);
  if (spec.generate > 0 && Number.isFinite(maxPositions) && T + spec.generate > maxPositions) {
    throw new ApiError(
      'invalid_params',
      `invalid params: generate ${spec.generate} would run past the model's ${maxPositions} positions (the prompt has ${T})`,
      { field: 'generate' },
    );
  }
}

function cancelQueuedIntervention(store: Store, id: number): void {
  for (const j of store.jobs.list({ states: ['queued'], kind: 'intervene' })) {
    if ((j.params as { interventionId?: number } | null)?.interventionId === id) store.jobs.cancel(j.id);
  }
}

/** Runs a queued intervention on the compute backend and stores its outcome with the trace. */
export function interventionJobRun(ctx: ServiceContext) {
  return async (job: JobRecord, queue: JobQueue): Promise<void> => {
    const { store } = ctx;
    const id = (job.params as { interventionId?: number } | null)?.interventionId;
    const iv = typeof id === 'number' ? store.interventions.find(id) : null;
    if (iv?.status !== 'queued') {
      store.jobs.cancel(job.id); // cancelled or deleted meanwhile
      return;
    }
    const trace = store.traces.find(iv.traceId);
    const model = trace?.modelId == null ? null : store.models.find(trace.modelId);
    if (!trace?.tokenIds || !model) {
      const error = { code: 'not_found', message: 'the trace or its model is no longer in the library' };
      store.jobs.fail(job.id, error);
      interventionUpdated(
        ctx,
        store.interventions.setStatus(iv.id, 'failed', { error, finishedAt: store.now() }),
      );
      return;
    }
    const tokenIds = trace.tokenIds;
    const work = {
      traceId: trace.id,
      interventionId: iv.id,
      projectId: trace.projectId,
      cancelMessage: `intervention ${iv.id} was cancelled`,
    };
    const outcomes = statusOutcomes(store.interventions, iv.id, (r) => interventionUpdated(ctx, r));
    await queue.run(job, work, outcomes, async (running) => {
      interventionUpdated(
        ctx,
        store.interventions.setStatus(iv.id, 'running', {
          startedAt: store.now(),
          progress: null,
          error: null,
        }),
      );
      // The trace's node table: its logit targets are reported, its features marked in the outcome.
      const nodes = store.graphs.has(trace.id) ? store.graphs.nodes(trace.id) : null;
      const write = queue.throttle((progress) => store.interventions.setProgress(iv.id, progress));
      const outcome = await ctx.compute.intervene(
        {
          checkpointDir: model.checkpointDir,
          transcoderDir: model.transcoderDir,
          tokenIds,
          provider: trace.settings.provider === 'none' ? 'cpu' : trace.settings.provider, // never an import here
          spec: iv.spec,
          // Combination and vector targets have virtual ids (vocab + k): only real tokens are tracked.
          trackTokens: nodes ? realLogitTokens(nodes.logits.tokenId, trace.settings.targets) : undefined,
        },
        {
          signal: running.controller.signal,
          onProgress: (progress) => {
            write(progress);
            ctx.emit('intervention.progress', { interventionId: iv.id, traceId: trace.id, progress });
          },
        },
      );
      if (running.controller.signal.aborted) throw running.controller.signal.reason;
      // Mark the features the graph has as nodes (the UI highlights those).
      if (nodes) {
        const ids = nodeIndexById(nodes);
        for (const c of outcome.featureChanges) c.inGraph = ids.has(c.nodeId);
      }
      if (!store.interventions.find(iv.id)) {
        store.jobs.cancel(job.id); // deleted while it ran
        return;
      }
      const done = store.db.transaction(() => {
        store.jobs.complete(job.id, { interventionId: iv.id });
        return store.interventions.setStatus(iv.id, 'done', {
          progress: null,
          result: outcome,
          finishedAt: store.now(),
        });
      })();
      interventionUpdated(ctx, done);
    });
  };
}
