/**
 * The backend behind the API contract: every method's implementation over the store, the
 * compute backend (in-process, or the job pool's worker threads: PoolCompute) and the
 * persisted job queue. Dependencies are injected; nothing here is global, so tests, the server and the
 * Electron main process each build their own.
 *
 * Traces and interventions run one at a time from the persisted queue: queued → running
 * (progress events) → done (a trace's graph saved whole by Store.saveTrace; an intervention's
 * outcome stored with its trace) | failed (readable reason) | cancelled. Interventions are
 * short and interactive, so they go ahead of queued traces. Work interrupted by a crash is
 * queued again when the service starts; work interrupted by a clean shutdown goes back to the
 * queue at once.
 */

import { DEFAULT_MAX_FEATURE_NODES } from '../engine/attribution/defaults.ts';
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import { realLogitTokens } from '../engine/attribution/target-spec.ts';
import { EngineError, isEngineError } from '../engine/errors.ts';
import { importGraphJson } from '../engine/graph-json/import.ts';
import { featureNodeId } from '../engine/intervene/intervention-run.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import type { ComputeBackend } from '../jobs/compute-backend.ts';
import { deviceForProvider } from '../jobs/kinds/index.ts';
import type { JobRecord } from '../store/jobs.ts';
import { pinnedKey, type StoredView } from '../store/graphs.ts';
import { acquireServiceLock, type ServiceLock } from '../store/lock.ts';
import { SCHEMA_VERSION } from '../store/migrations/index.ts';
import type { Store } from '../store/store.ts';
import type {
  FeatureEdit,
  InterventionRecord,
  InterventionSpec,
  TraceError,
  TraceProgress,
  TraceRecord,
  TraceSettings,
} from '../store/types.ts';
import {
  API_VERSION,
  type ApiEvents,
  DEFAULT_TRACE_SETTINGS,
  type EventName,
  type GraphView,
  type MethodName,
  type Params,
  type Result,
  type TraceSettingsInput,
} from './contract.ts';
import {
  checkCorpus,
  type DashboardsJobParams,
  dashboardsStatus,
  defaultCorpus,
  latestDashboardsJob,
  modelForSet,
} from './dashboards-job.ts';
import { ApiError, toApiError } from './errors.ts';
import { diffTraces, traceNodeIds } from './graph-diff-handler.ts';
import { exportGraphJsonText, importedToStorable } from './graph-json-io.ts';
import { checkModelFoldersOffThread } from './model-check.ts';
import { checkTraceTargets, ModelTokenLookup } from './model-tokens.ts';
import { isMethodName, METHOD_NAMES, parseParams } from './schema.ts';
import { applyAutoLabels, buildGraphView, nodeIndexById, nodeKind } from './view.ts';

export interface ServiceOptions {
  store: Store;
  compute: ComputeBackend;
  /** Run queued traces (default true; false for a read-only front end). */
  runJobs?: boolean;
  /** Failures of background work that have no caller to return to. */
  onBackgroundError?: (e: unknown) => void;
  /** Minimum time between progress writes to the database (default 500 ms). */
  progressWriteMs?: number;
}

type Handler<M extends MethodName> = (p: Params<M>) => Result<M> | Promise<Result<M>>;
type Listener<E extends EventName> = (data: ApiEvents[E]) => void;

interface RunningJob {
  job: JobRecord;
  traceId: number;
  /** Set when the job is an intervention (on trace `traceId`). */
  interventionId: number | null;
  /** Set when the job computes a transcoder set's dashboards (traceId and projectId are then -1). */
  dashboardsSetId?: number;
  projectId: number;
  controller: AbortController;
  reason: 'cancel' | 'shutdown' | null;
  done: Promise<void>;
}

/** A trace whose runs were interrupted this many times (crash or shutdown) is failed. */
const MAX_ATTEMPTS = 3;

/** Interventions run before queued traces: they take seconds and someone is waiting. */
const INTERVENTION_PRIORITY = 1;

function describeEdit(e: FeatureEdit): string {
  const id = featureNodeId(e.layer, e.feature, e.position);
  if (e.mode === 'ablate') return `ablate ${id}`;
  return e.mode === 'scale' ? `scale ${id} ×${e.value}` : `set ${id} = ${e.value}`;
}

/** "ablate 2_117_5, scale 3_40_7 ×2 (closed loop)", at most 200 characters. */
export function describeIntervention(spec: InterventionSpec): string {
  const loop = spec.loop === 'open' ? 'open loop' : 'closed loop';
  const edits = spec.edits.map(describeEdit).join(', ');
  const text = `${edits} (${loop})`;
  return text.length <= 200 ? text : `${edits.slice(0, 180)}… (${loop})`;
}
function slugify(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'graph'
  );
}

export function mergeSettings(base: TraceSettings, input: TraceSettingsInput | undefined): TraceSettings {
  const s = { ...base };
  if (input)
    for (const [k, v] of Object.entries(input)) if (v !== undefined) (s as Record<string, unknown>)[k] = v;
  // null (and traces stored before the default cap, whose null meant all) take the default:
  // the stored settings say the cap the trace runs with
  s.maxFeatureNodes ??= DEFAULT_MAX_FEATURE_NODES;
  return s;
}

export class WorkbenchService {
  readonly store: Store;
  private readonly compute: ComputeBackend;
  private readonly listeners = new Map<EventName, Set<Listener<EventName>>>();
  private readonly runJobs: boolean;
  private readonly progressWriteMs: number;
  private running: RunningJob | null = null;
  private loop: Promise<void> | null = null;
  private kickAgain = false;
  private closed = false;
  private started = false;
  private lock: ServiceLock | null = null;
  private readonly tokenLookup = new ModelTokenLookup();

  constructor(private readonly opts: ServiceOptions) {
    this.store = opts.store;
    this.compute = opts.compute;
    this.runJobs = opts.runJobs ?? true;
    this.progressWriteMs = opts.progressWriteMs ?? 500;
  }

  /**
   * Recovers work a previous process left running, then starts the queue. Only one process may
   * run a library's queue: a second one gets a 'conflict' StoreError naming the first.
   */
  start(): this {
    if (this.started) return this;
    if (this.runJobs) this.lock = acquireServiceLock(this.store.dataDir);
    this.started = true;
    if (this.runJobs) {
      // Trace jobs a previous process left running (it crashed) or interrupted (it shut down).
      for (const job of this.store.jobs.recoverInterrupted()) {
        if (job.kind === 'intervene') {
          this.recoverIntervention(job);
          continue;
        }
        if (job.kind === 'dashboards') {
          if (job.attempts >= MAX_ATTEMPTS) this.store.jobs.cancel(job.id);
          else this.store.jobs.requeue(job.id, { resume: false });
          continue;
        }
        if (job.kind !== 'trace' || job.traceId === null) continue;
        const t = this.store.traces.find(job.traceId);
        if (t?.status !== 'running' && t?.status !== 'queued') {
          this.store.jobs.cancel(job.id); // its trace was finished, cancelled or deleted meanwhile
        } else if (job.attempts >= MAX_ATTEMPTS) {
          this.store.jobs.cancel(job.id);
          this.store.traces.setStatus(t.id, 'failed', {
            progress: null,
            error: {
              code: 'interrupted',
              message: `the app stopped ${job.attempts} times while this trace ran`,
            },
            finishedAt: this.store.now(),
          });
        } else {
          this.store.jobs.requeue(job.id, { resume: false });
          this.store.traces.setStatus(t.id, 'queued', { progress: null, startedAt: null });
        }
      }
      this.kick();
    }
    return this;
  }

  private recoverIntervention(job: JobRecord): void {
    const id = (job.params as { interventionId?: number } | null)?.interventionId;
    const iv = typeof id === 'number' ? this.store.interventions.find(id) : null;
    if (iv?.status !== 'running' && iv?.status !== 'queued') {
      this.store.jobs.cancel(job.id);
    } else if (job.attempts >= MAX_ATTEMPTS) {
      this.store.jobs.cancel(job.id);
      this.store.interventions.setStatus(iv.id, 'failed', {
        progress: null,
        error: { code: 'interrupted', message: `the app stopped ${job.attempts} times while this ran` },
        finishedAt: this.store.now(),
      });
    } else {
      this.store.jobs.requeue(job.id, { resume: false });
      this.store.interventions.setStatus(iv.id, 'queued', { progress: null, startedAt: null });
    }
  }

  // ---- events

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<EventName>);
    return () => set.delete(listener as Listener<EventName>);
  }

  private emit<E extends EventName>(event: E, data: ApiEvents[E]): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        l(data);
      } catch (e) {
        this.opts.onBackgroundError?.(e);
      }
    }
  }

  private traceUpdated(trace: TraceRecord): TraceRecord {
    this.emit('trace.updated', { trace });
    return trace;
  }

  private interventionUpdated(intervention: InterventionRecord): InterventionRecord {
    this.emit('intervention.updated', { intervention });
    return intervention;
  }

  // ---- calls

  /** Validates and runs a method; every failure is an ApiError. */
  async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>>;
  async call(method: string, params: unknown): Promise<unknown>;
  async call(method: string, params: unknown): Promise<unknown> {
    try {
      if (this.closed) throw new ApiError('conflict', 'the service is shutting down');
      if (!isMethodName(method)) {
        throw new ApiError(
          'unknown_method',
          `unknown method "${String(method).slice(0, 80)}"; known: ${METHOD_NAMES.join(', ')}`,
        );
      }
      const parsed = parseParams(method, params);
      const handler = this.handlers[method] as Handler<typeof method>;
      return await handler(parsed as never);
    } catch (e) {
      throw toApiError(e);
    }
  }

  private readonly handlers: { [M in MethodName]: Handler<M> } = {
    'server.info': () => ({
      app: 'circuit-workbench',
      apiVersion: API_VERSION,
      schemaVersion: SCHEMA_VERSION,
      dataDir: this.store.dataDir,
    }),

    'projects.list': () => this.store.projects.list(),
    'projects.create': (p) => {
      const r = this.store.projects.create(p.name.trim(), p.description ?? '');
      this.emit('library.changed', { entity: 'project', id: r.id });
      return r;
    },
    'projects.update': (p) => {
      const r = this.store.projects.update(p.id, { name: p.name?.trim(), description: p.description });
      this.emit('library.changed', { entity: 'project', id: r.id });
      return r;
    },
    'projects.delete': async (p) => {
      this.store.projects.get(p.id);
      if (this.running?.projectId === p.id) await this.stopRunning('cancel');
      this.store.deleteProject(p.id);
      this.emit('library.changed', { entity: 'project', id: p.id });
      return { id: p.id };
    },

    'models.list': () => this.store.models.list(),
    'models.get': (p) => this.store.models.get(p.id),
    'models.register': async (p) => {
      const r = this.store.models.upsert(await checkModelFoldersOffThread(p));
      this.emit('library.changed', { entity: 'model', id: r.id });
      return r;
    },
    'models.validate': async (p) => {
      const m = this.store.models.get(p.id);
      const r = this.store.models.upsert(
        await checkModelFoldersOffThread({
          checkpointDir: m.checkpointDir,
          transcoderDir: m.transcoderDir,
          name: m.name,
        }),
      );
      this.emit('library.changed', { entity: 'model', id: r.id });
      return r;
    },
    'models.rename': (p) => {
      const r = this.store.models.rename(p.id, p.name.trim());
      this.emit('library.changed', { entity: 'model', id: r.id });
      return r;
    },
    'models.delete': (p) => {
      this.store.models.delete(p.id);
      this.emit('library.changed', { entity: 'model', id: p.id });
      return { id: p.id };
    },
    'models.transcoderSets': () => this.store.models.listTranscoderSets(),
    'models.tokens': (p) => this.tokenLookup.lookup(this.store.models.get(p.modelId), p),

    'traces.start': (p) => {
      if (p.prompt === undefined && p.tokenIds === undefined) {
        throw new ApiError('invalid_params', 'invalid params: give prompt or tokenIds', { field: 'prompt' });
      }
      if (p.prompt !== undefined && p.tokenIds !== undefined) {
        throw new ApiError('invalid_params', 'invalid params: give prompt or tokenIds, not both', {
          field: 'tokenIds',
        });
      }
      const model = this.store.models.get(p.modelId);
      if (!model.valid) {
        const first = model.validation.problems[0];
        throw new ApiError(
          'conflict',
          `model ${model.id} (${model.name}) did not pass validation${first ? `: ${first.message}` : ''}; fix it and run models.validate`,
          { field: 'modelId' },
        );
      }
      const projectId = p.projectId ?? this.store.projects.ensureDefault().id;
      this.store.projects.get(projectId);
      checkTraceTargets(p.settings?.targets, model);
      return this.enqueueTrace({
        projectId,
        modelId: model.id,
        transcoderSetId: model.transcoderSetId,
        prompt: p.prompt ?? '',
        tokenIds: p.tokenIds ?? null,
        settings: mergeSettings(DEFAULT_TRACE_SETTINGS, p.settings),
        tags: p.tags,
        notes: p.notes,
      });
    },
    'traces.get': (p) => ({ ...this.store.traces.get(p.id), views: this.store.graphs.listViews(p.id) }),
    'traces.list': (p) => this.store.traces.list(p),
    'traces.cancel': async (p) => {
      const t = this.store.traces.get(p.id);
      if (t.status === 'queued') {
        for (const j of this.store.jobs.activeForTrace(t.id)) this.store.jobs.cancel(j.id);
        return this.traceUpdated(
          this.store.traces.setStatus(t.id, 'cancelled', { progress: null, finishedAt: this.store.now() }),
        );
      }
      if (t.status === 'running' && this.running?.traceId === t.id) {
        await this.stopRunning('cancel', 5000);
        return this.store.traces.get(t.id);
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
      const t = this.store.traces.get(p.id);
      if (t.source !== 'trace' || t.modelId === null) {
        throw new ApiError('unsupported', `trace ${t.id} has no registered model to trace again`, {
          field: 'id',
        });
      }
      const model = this.store.models.get(t.modelId);
      const settings = mergeSettings(t.settings, p.settings); // keeps the trace's targets unless given
      checkTraceTargets(settings.targets, model);
      return this.enqueueTrace({
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
      const t = this.store.traces.get(p.id);
      if (this.running?.traceId === t.id) await this.stopRunning('cancel', 5000);
      else if (t.status === 'queued') {
        for (const j of this.store.jobs.activeForTrace(t.id)) this.store.jobs.cancel(j.id);
        this.store.traces.setStatus(t.id, 'cancelled', { finishedAt: this.store.now() });
      }
      const permanent = p.permanent ?? false;
      if (permanent) this.store.purgeTrace(t.id);
      else this.store.traces.softDelete(t.id);
      this.emit('trace.deleted', { traceId: t.id, permanent });
      return { id: t.id, permanent };
    },
    'traces.restore': (p) => this.traceUpdated(this.store.traces.restore(p.id)),
    'traces.duplicate': (p) => {
      if (p.projectId !== undefined) this.store.projects.get(p.projectId);
      return this.traceUpdated(this.store.duplicateTrace(p.id, { projectId: p.projectId }));
    },
    'traces.update': (p) => {
      if (p.projectId !== undefined) this.store.projects.get(p.projectId);
      return this.traceUpdated(this.store.traces.update(p.id, { notes: p.notes, projectId: p.projectId }));
    },
    'traces.tag': (p) => {
      this.store.traces.get(p.id);
      this.store.db.transaction(() => {
        if (p.add?.length) this.store.traces.addTags(p.id, p.add);
        if (p.remove?.length) this.store.traces.removeTags(p.id, p.remove);
      })();
      return this.traceUpdated(this.store.traces.get(p.id));
    },
    'traces.tags': () => this.store.traces.tags(),

    'graphs.view': async (p) => (await this.view(p.traceId, p)).view,
    'graphs.prune': async (p) => {
      const r = await this.view(p.traceId, p);
      return r.stored.summary;
    },
    'graphs.views': (p) => {
      this.store.traces.get(p.traceId);
      return this.store.graphs.listViews(p.traceId);
    },
    'graphs.exportJson': async (p) => {
      const { trace, view, stored, nodes } = await this.view(p.traceId, p);
      const labels = new Map<string, string>();
      for (const n of view.nodes) if (n.kind !== 'logit' && n.label) labels.set(n.id, n.label);
      const ann = this.store.annotations.get(trace.id);
      const model = trace.modelId === null ? null : this.store.models.find(trace.modelId);
      const set =
        trace.transcoderSetId === null ? null : this.store.models.findTranscoderSet(trace.transcoderSetId);
      const slug = `${slugify(trace.prompt)}-${trace.id}`;
      const json = exportGraphJsonText({
        nodes,
        pruned: stored.pruned,
        labels,
        pinned: ann.pinned,
        supernodes: ann.supernodes,
        notes: ann.notes,
        slug,
        scan: model?.name ?? '',
        prompt: trace.prompt,
        modelId: model?.name ?? null,
        transcoderList: set ? [set.dir] : [],
        info: JSON.parse(
          JSON.stringify({ traceId: trace.id, settings: trace.settings, tokenIds: trace.tokenIds }),
        ),
      });
      return { fileName: `${slug}.json`, json };
    },
    'graphs.diff': (p) => diffTraces(p, { store: this.store, view: (id, q) => this.view(id, q) }),
    'graphs.nodeIds': (p) => traceNodeIds(this.store, p.traceId),
    'graphs.importJson': (p) => {
      let doc: ReturnType<typeof importGraphJson>;
      try {
        doc = importGraphJson(p.json, { file: importFileName(p.fileName) });
      } catch (e) {
        if (isEngineError(e)) {
          throw new ApiError('invalid_params', `graph JSON: ${e.message}`, {
            field: e.field,
            engineCode: e.code,
          });
        }
        throw e;
      }
      const g = importedToStorable(doc);
      const projectId = p.projectId ?? this.store.projects.ensureDefault().id;
      this.store.projects.get(projectId);
      const trace = this.store.saveTrace({
        trace: {
          projectId,
          modelId: null,
          transcoderSetId: null,
          source: 'import',
          prompt: g.prompt,
          tokenIds: null,
          settings: {
            ...DEFAULT_TRACE_SETTINGS,
            nodeThreshold: g.view.nodeThreshold,
            edgeThreshold: g.view.edgeThreshold,
            provider: 'none',
          },
          tags: p.tags,
          notes: g.notes.length ? `Imported graph JSON. ${g.notes.join('; ')}` : 'Imported graph JSON.',
        },
        raw: { nodes: g.nodes, csr: g.csr },
        views: [{ pruned: g.view }],
        annotations: { labels: g.labels, pinned: g.pinned, supernodes: g.supernodes, notes: g.nodeNotes },
      });
      this.traceUpdated(trace);
      return { trace, notes: g.notes };
    },

    'features.get': (p) => {
      this.store.models.getTranscoderSet(p.transcoderSetId);
      return this.store.features.get(p.transcoderSetId, p.layer, p.index);
    },
    'features.setLabel': (p) => {
      const set = this.store.models.getTranscoderSet(p.transcoderSetId);
      if (p.layer >= set.nLayers) {
        throw new ApiError('invalid_params', `layer ${p.layer} is beyond the set's ${set.nLayers} layers`, {
          field: 'layer',
        });
      }
      const r = this.store.features.setLabel(p.transcoderSetId, p.layer, p.index, p.label.trim());
      this.emit('library.changed', { entity: 'feature', id: `${p.transcoderSetId}:${p.layer}:${p.index}` });
      return r;
    },
    'features.search': (p) => {
      this.store.models.getTranscoderSet(p.transcoderSetId);
      return this.store.features.search(p.transcoderSetId, p.query, p.limit);
    },
    'features.putDashboards': (p) => {
      const set = this.store.models.getTranscoderSet(p.transcoderSetId);
      for (const [i, r] of p.records.entries()) {
        if (r.layer >= set.nLayers) {
          throw new ApiError(
            'invalid_params',
            `invalid params: records[${i}].layer ${r.layer} is out of range; transcoder set ${set.id} has ${set.nLayers} layers`,
            { field: `records[${i}].layer` },
          );
        }
        if (r.index >= set.dTranscoder) {
          throw new ApiError(
            'invalid_params',
            `invalid params: records[${i}].index ${r.index} is out of range; transcoder set ${set.id} has ${set.dTranscoder} features per layer`,
            { field: `records[${i}].index` },
          );
        }
      }
      this.store.features.putDashboards(
        p.transcoderSetId,
        p.records.map((r) => ({ layer: r.layer, index: r.index, dashboard: r })),
      );
      this.emit('library.changed', { entity: 'feature', id: `${p.transcoderSetId}:*` });
      return { stored: p.records.length };
    },
    'features.dashboardsStatus': (p) => dashboardsStatus(this.store, p.transcoderSetId),
    'features.computeDashboards': (p) => {
      const set = this.store.models.getTranscoderSet(p.transcoderSetId);
      const active = latestDashboardsJob(this.store, set.id);
      if (active && (active.state === 'queued' || active.state === 'running'))
        return dashboardsStatus(this.store, set.id);
      if (p.ifMissing && this.store.features.dashboardCount(set.id) > 0)
        return dashboardsStatus(this.store, set.id);
      if (!this.compute.dashboards) {
        throw new ApiError('unsupported', 'this backend cannot compute dashboards', {
          field: 'transcoderSetId',
        });
      }
      const model = modelForSet(this.store, set.id);
      const corpus = p.corpus === undefined ? defaultCorpus(model.checkpointDir) : checkCorpus(p.corpus);
      if (corpus === null) {
        throw new ApiError(
          'invalid_params',
          `invalid params: give corpus (a text file, one document per line): model ${model.name} has no corpus/ folder`,
          { field: 'corpus' },
        );
      }
      const params: DashboardsJobParams = { transcoderSetId: set.id, modelId: model.id, corpus };
      if (p.maxTokens !== undefined) params.maxTokens = p.maxTokens;
      this.store.jobs.enqueue({ kind: 'dashboards', device: 'cpu', params: { ...params } });
      const status = dashboardsStatus(this.store, set.id);
      this.emit('dashboards.updated', status);
      this.kick();
      return status;
    },
    'features.cancelDashboards': async (p) => {
      this.store.models.getTranscoderSet(p.transcoderSetId);
      const job = latestDashboardsJob(this.store, p.transcoderSetId);
      if (job?.state === 'queued') this.store.jobs.cancel(job.id);
      else if (job?.state === 'running' && this.running?.dashboardsSetId === p.transcoderSetId)
        await this.stopRunning('cancel', 5000);
      const status = dashboardsStatus(this.store, p.transcoderSetId);
      if (job) this.emit('dashboards.updated', status);
      return status;
    },

    'interventions.start': (p) => {
      const trace = this.store.traces.get(p.traceId);
      const spec: InterventionSpec = {
        loop: p.loop ?? 'closed',
        edits: p.edits,
        freezeAttention: p.freezeAttention ?? false,
        generate: p.generate ?? 0,
        top: p.top ?? 10,
      };
      this.checkIntervention(trace, spec);
      const id = this.store.db
        .transaction(() => {
          const interventionId = this.store.interventions.create(
            trace.id,
            p.label?.trim() || describeIntervention(spec),
            spec,
          );
          this.store.jobs.enqueue({
            kind: 'intervene',
            device: deviceForProvider({ provider: trace.settings.provider }),
            params: { interventionId },
            priority: INTERVENTION_PRIORITY,
            traceId: trace.id,
          });
          return interventionId;
        })
        .immediate();
      const r = this.interventionUpdated(this.store.interventions.get(id));
      this.kick();
      return r;
    },
    'interventions.list': (p) => {
      this.store.traces.get(p.traceId);
      return this.store.interventions.list(p.traceId);
    },
    'interventions.get': (p) => this.store.interventions.get(p.id),
    'interventions.cancel': async (p) => {
      const iv = this.store.interventions.get(p.id);
      if (iv.status === 'queued') {
        this.cancelQueuedIntervention(iv.id);
        return this.interventionUpdated(
          this.store.interventions.setStatus(iv.id, 'cancelled', {
            progress: null,
            finishedAt: this.store.now(),
          }),
        );
      }
      if (iv.status === 'running' && this.running?.interventionId === iv.id) {
        await this.stopRunning('cancel', 5000);
        return this.store.interventions.get(iv.id);
      }
      throw new ApiError(
        'conflict',
        `intervention ${iv.id} is ${iv.status}; only queued or running interventions can be cancelled`,
        { field: 'id' },
      );
    },
    'interventions.delete': async (p) => {
      const iv = this.store.interventions.get(p.id);
      if (this.running?.interventionId === iv.id) await this.stopRunning('cancel', 5000);
      else if (iv.status === 'queued') this.cancelQueuedIntervention(iv.id);
      const last = this.store.interventions.find(iv.id) ?? iv;
      this.store.interventions.delete(iv.id);
      this.emit('intervention.updated', { intervention: last, deleted: true });
      return { id: iv.id, traceId: iv.traceId };
    },

    'annotations.get': (p) => {
      this.store.traces.get(p.traceId);
      return this.store.annotations.get(p.traceId);
    },
    'annotations.update': (p) => {
      const trace = this.store.traces.get(p.traceId);
      if (!this.store.graphs.has(trace.id)) {
        throw new ApiError('conflict', `trace ${trace.id} has no graph yet (it is ${trace.status})`, {
          field: 'traceId',
        });
      }
      const ids = nodeIndexById(this.store.graphs.nodes(trace.id));
      const check = (list: Iterable<string>, field: string) => {
        for (const id of list) {
          if (!ids.has(id)) {
            throw new ApiError(
              'invalid_params',
              `invalid params: ${field} names node "${id}", which is not in trace ${trace.id}'s graph`,
              {
                field,
              },
            );
          }
        }
      };
      if (p.pinned) check(p.pinned, 'pinned');
      p.supernodes?.forEach((s, i) => {
        check(s.nodeIds, `supernodes[${i}].nodeIds`);
      });
      if (p.labels) check(Object.keys(p.labels), 'labels');
      if (p.notes) check(Object.keys(p.notes), 'notes');
      const { traceId, ...changes } = p;
      const r = this.store.annotations.update(traceId, {
        ...changes,
        pinned: changes.pinned ? [...new Set(changes.pinned)] : undefined,
      } as Parameters<Store['annotations']['update']>[1]);
      this.emit('library.changed', { entity: 'annotation', id: traceId });
      return r;
    },
  };

  // ---- interventions

  /** Everything the worker would otherwise fail on later, as readable errors now. */
  private checkIntervention(trace: TraceRecord, spec: InterventionSpec): void {
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
    const model = this.store.models.find(trace.modelId);
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
    const set = this.store.models.getTranscoderSet(trace.transcoderSetId);
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

  private cancelQueuedIntervention(id: number): void {
    for (const j of this.store.jobs.list({ states: ['queued'], kind: 'intervene' })) {
      if ((j.params as { interventionId?: number } | null)?.interventionId === id)
        this.store.jobs.cancel(j.id);
    }
  }

  private async runInterventionJob(job: JobRecord): Promise<void> {
    const id = (job.params as { interventionId?: number } | null)?.interventionId;
    const iv = typeof id === 'number' ? this.store.interventions.find(id) : null;
    if (iv?.status !== 'queued') {
      this.store.jobs.cancel(job.id); // cancelled or deleted meanwhile
      return;
    }
    const trace = this.store.traces.find(iv.traceId);
    const model = trace?.modelId == null ? null : this.store.models.find(trace.modelId);
    const fail = (code: string, message: string) => {
      this.store.jobs.fail(job.id, { code, message });
      this.interventionUpdated(
        this.store.interventions.setStatus(iv.id, 'failed', {
          error: { code, message },
          finishedAt: this.store.now(),
        }),
      );
    };
    if (!trace?.tokenIds || !model) {
      fail('not_found', 'the trace or its model is no longer in the library');
      return;
    }
    const { running, settle } = this.startRunning(job, trace, iv.id);
    try {
      this.interventionUpdated(
        this.store.interventions.setStatus(iv.id, 'running', {
          startedAt: this.store.now(),
          progress: null,
          error: null,
        }),
      );
      // The trace's node table: its logit targets are reported, its features marked in the outcome.
      const nodes = this.store.graphs.has(trace.id) ? this.store.graphs.nodes(trace.id) : null;
      let lastWrite = 0;
      const outcome = await this.compute.intervene(
        {
          checkpointDir: model.checkpointDir,
          transcoderDir: model.transcoderDir,
          tokenIds: trace.tokenIds,
          provider: trace.settings.provider === 'none' ? 'cpu' : trace.settings.provider, // never an import here
          spec: iv.spec,
          // Combination and vector targets have virtual ids (vocab + k): only real tokens are tracked.
          trackTokens: nodes ? realLogitTokens(nodes.logits.tokenId, trace.settings.targets) : undefined,
        },
        {
          signal: running.controller.signal,
          onProgress: (progress) => {
            const now = Date.now();
            if (now - lastWrite >= this.progressWriteMs) {
              this.store.interventions.setProgress(iv.id, progress);
              lastWrite = now;
            }
            this.emit('intervention.progress', { interventionId: iv.id, traceId: trace.id, progress });
          },
        },
      );
      if (running.controller.signal.aborted) throw running.controller.signal.reason;
      // Mark the features the graph has as nodes (the UI highlights those).
      if (nodes) {
        const ids = nodeIndexById(nodes);
        for (const c of outcome.featureChanges) c.inGraph = ids.has(c.nodeId);
      }
      if (!this.store.interventions.find(iv.id)) {
        this.store.jobs.cancel(job.id); // deleted while it ran
        return;
      }
      const done = this.store.db.transaction(() => {
        this.store.jobs.complete(job.id, { interventionId: iv.id });
        return this.store.interventions.setStatus(iv.id, 'done', {
          progress: null,
          result: outcome,
          finishedAt: this.store.now(),
        });
      })();
      this.interventionUpdated(done);
    } catch (e) {
      this.settleThrown(job, running, e, {
        exists: () => this.store.interventions.find(iv.id) !== null,
        requeue: () =>
          this.store.interventions.setStatus(iv.id, 'queued', { progress: null, startedAt: null }),
        cancelled: (now) =>
          this.interventionUpdated(
            this.store.interventions.setStatus(iv.id, 'cancelled', { progress: null, finishedAt: now }),
          ),
        failed: (now, error) =>
          this.interventionUpdated(
            this.store.interventions.setStatus(iv.id, 'failed', { progress: null, finishedAt: now, error }),
          ),
      });
    } finally {
      this.running = null;
      settle();
    }
  }

  // ---- graphs

  private async view(
    traceId: number,
    p: { nodeThreshold?: number; edgeThreshold?: number; usePins?: boolean },
  ): Promise<{
    trace: TraceRecord;
    view: GraphView;
    stored: StoredView;
    nodes: ReturnType<Store['graphs']['nodes']>;
  }> {
    const trace = this.store.traces.get(traceId);
    const def = this.store.graphs.defaultView(traceId);
    if (!def || !this.store.graphs.has(traceId)) {
      throw new ApiError('conflict', `trace ${traceId} has no graph yet (it is ${trace.status})`, {
        field: 'traceId',
      });
    }
    const nodes = this.store.graphs.nodes(traceId);
    const nt = p.nodeThreshold ?? def.pruned.nodeThreshold;
    const et = p.edgeThreshold ?? def.pruned.edgeThreshold;
    const ann = this.store.annotations.get(traceId);
    const imported = trace.source === 'import';
    let pinnedIds: string[] = [];
    let pinnedIdx: number[] = [];
    if ((p.usePins ?? true) && !imported && ann.pinned.length) {
      const ids = nodeIndexById(nodes);
      const lay = nodeLayout(nodes);
      for (const id of ann.pinned) {
        const i = ids.get(id);
        // Only feature and error nodes can be pruned; pinning the others changes nothing.
        if (i !== undefined && (nodeKind(lay, i) === 'feature' || nodeKind(lay, i) === 'error')) {
          pinnedIds.push(id);
          pinnedIdx.push(i);
        }
      }
      pinnedIdx = [...new Set(pinnedIdx)];
      pinnedIds = [...new Set(pinnedIds)];
    }
    const key = pinnedKey(pinnedIdx);
    let stored: StoredView | null = this.store.graphs.getView(traceId, nt, et, key);
    const cached = stored !== null;
    if (!stored) {
      if (imported) {
        throw new ApiError(
          'unsupported',
          `trace ${traceId} is an imported graph: without its unpruned adjacency it is only available at its own thresholds (node ${def.pruned.nodeThreshold}, edge ${def.pruned.edgeThreshold})`,
          { field: 'nodeThreshold' },
        );
      }
      const pruned: PrunedGraph = await this.compute.prune({
        key: this.store.graphs.sidecarName(traceId),
        raw: () => this.store.graphs.loadRaw(traceId),
        options: { nodeThreshold: nt, edgeThreshold: et, pinned: pinnedIdx },
      });
      const summary = this.store.graphs.putView(traceId, pruned, { pinned: key });
      stored = { summary, pruned };
      this.emit('library.changed', { entity: 'view', id: traceId });
    }
    const labels =
      trace.transcoderSetId === null
        ? new Map<string, string>()
        : this.store.features.labels(trace.transcoderSetId);
    const view = buildGraphView({
      traceId,
      nodes,
      pruned: stored.pruned,
      featureLabels: labels,
      annotations: ann,
      pinned: pinnedIds,
      cached,
      imported,
    });
    if (trace.transcoderSetId !== null)
      applyAutoLabels(
        view,
        this.store.features.dashboardDigests(
          trace.transcoderSetId,
          view.nodes.filter((n) => n.kind === 'feature'),
        ),
      );
    return { trace, view, stored, nodes };
  }

  // ---- the trace queue

  private enqueueTrace(t: {
    projectId: number;
    modelId: number;
    transcoderSetId: number | null;
    prompt: string;
    tokenIds: number[] | null;
    settings: TraceSettings;
    tags?: string[];
    notes?: string;
  }): TraceRecord {
    const id = this.store.db
      .transaction(() => {
        const traceId = this.store.traces.create({ ...t, source: 'trace', status: 'queued' });
        this.store.jobs.enqueue({
          kind: 'trace',
          device: deviceForProvider({ provider: t.settings.provider }),
          params: { traceId },
          traceId,
        });
        return traceId;
      })
      .immediate();
    const trace = this.traceUpdated(this.store.traces.get(id));
    this.kick();
    return trace;
  }

  /** Starts the queue loop if it is idle; if it is running, makes it look again before it stops. */
  private kick(): void {
    if (!this.runJobs || this.closed || !this.started) return;
    if (this.loop) {
      // The loop may already have found the queue empty and be about to stop: without this,
      // work queued in that instant would wait for the next kick.
      this.kickAgain = true;
      return;
    }
    this.kickAgain = false;
    // The loop starts on a later turn of the event loop, so whoever queued the work gets its
    // answer before the work's first event; `.finally` runs after the assignment.
    this.loop = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.drainQueue())
      .finally(() => {
        this.loop = null;
        if (this.kickAgain) this.kick();
      });
  }

  private async drainQueue(): Promise<void> {
    try {
      for (;;) {
        if (this.closed) break;
        const job = this.store.jobs.claimAny(['trace', 'intervene', 'dashboards']);
        if (!job) break;
        if (job.kind === 'intervene') await this.runInterventionJob(job);
        else if (job.kind === 'dashboards') await this.runDashboardsJob(job);
        else await this.runTraceJob(job);
      }
    } catch (e) {
      this.opts.onBackgroundError?.(e);
    }
  }

  /** Resolves when the queue is empty and nothing runs (tests, CLI). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private async stopRunning(reason: 'cancel' | 'shutdown', waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    const r = this.running;
    if (!r) return;
    r.reason = reason;
    r.controller.abort(
      new EngineError(
        'cancelled',
        r.dashboardsSetId !== undefined
          ? `the dashboards of transcoder set ${r.dashboardsSetId} were cancelled`
          : r.interventionId === null
            ? `trace ${r.traceId} was cancelled`
            : `intervention ${r.interventionId} was cancelled`,
      ),
    );
    await Promise.race([r.done, new Promise((resolve) => setTimeout(resolve, waitMs).unref())]);
  }

  private async runTraceJob(job: JobRecord): Promise<void> {
    const traceId = job.traceId;
    const trace = traceId === null ? null : this.store.traces.find(traceId);
    if (trace?.status !== 'queued' || trace.deletedAt !== null) {
      this.store.jobs.cancel(job.id); // the trace is no longer queued
      return;
    }
    const model = trace.modelId === null ? null : this.store.models.find(trace.modelId);
    if (!model) {
      this.store.jobs.fail(job.id, { code: 'not_found', message: 'the model is no longer registered' });
      this.traceUpdated(
        this.store.traces.setStatus(trace.id, 'failed', {
          error: { code: 'not_found', message: 'the model of this trace is no longer registered' },
          finishedAt: this.store.now(),
        }),
      );
      return;
    }
    const { running, settle } = this.startRunning(job, trace, null);
    try {
      this.traceUpdated(
        this.store.traces.setStatus(trace.id, 'running', {
          startedAt: this.store.now(),
          progress: null,
          error: null,
          finishedAt: null,
        }),
      );
      let lastWrite = 0;
      let lastPhase = '';
      const out = await this.compute.trace(
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
            const now = Date.now();
            if (
              progress.phase !== lastPhase ||
              now - lastWrite >= this.progressWriteMs ||
              progress.done === progress.total
            ) {
              this.store.traces.setProgress(trace.id, progress);
              lastWrite = now;
              lastPhase = progress.phase;
            }
            this.emit('trace.progress', { traceId: trace.id, progress });
          },
        },
      );
      if (running.controller.signal.aborted) throw running.controller.signal.reason;
      let saved = this.store.saveTrace({
        traceId: trace.id,
        raw: out.raw,
        views: [{ pruned: out.pruned }],
        timings: out.timingsMs,
        tokenIds: out.tokenIds,
      });
      if (saved.prompt === '')
        saved = this.store.traces.update(saved.id, { prompt: out.raw.nodes.promptTokens.join('') });
      this.store.jobs.complete(job.id, { traceId: trace.id });
      this.traceUpdated(saved);
    } catch (e) {
      this.settleThrown(job, running, e, {
        exists: () => this.store.traces.find(trace.id) !== null,
        requeue: () => this.store.traces.setStatus(trace.id, 'queued', { progress: null, startedAt: null }),
        cancelled: (now) =>
          this.traceUpdated(
            this.store.traces.setStatus(trace.id, 'cancelled', { progress: null, finishedAt: now }),
          ),
        failed: (now, error) =>
          this.traceUpdated(
            this.store.traces.setStatus(trace.id, 'failed', { progress: null, finishedAt: now, error }),
          ),
      });
    } finally {
      this.running = null;
      settle();
    }
  }

  /**
   * A transcoder set's dashboards: the set's model over the corpus, all records stored in one
   * transaction at the end (a cancelled run stores nothing), `dashboards.updated` throughout.
   */
  private async runDashboardsJob(job: JobRecord): Promise<void> {
    const p = job.params as unknown as DashboardsJobParams;
    const model = this.store.models.find(p.modelId);
    const set = this.store.models.findTranscoderSet(p.transcoderSetId);
    if (!model || !set || !this.compute.dashboards) {
      this.store.jobs.fail(job.id, { code: 'not_found', message: 'the model or transcoder set is gone' });
      if (set) this.emit('dashboards.updated', dashboardsStatus(this.store, set.id));
      return;
    }
    let settle!: () => void;
    const running: RunningJob = {
      job,
      traceId: -1,
      interventionId: null,
      dashboardsSetId: set.id,
      projectId: -1,
      controller: new AbortController(),
      reason: null,
      done: new Promise<void>((resolve) => {
        settle = resolve;
      }),
    };
    this.running = running;
    const update = (progress: TraceProgress | null) =>
      this.emit('dashboards.updated', dashboardsStatus(this.store, set.id, { jobId: job.id, progress }));
    // A cancel reaches the job only while it reads the corpus, where it stops between windows.
    // Aborted while it loads the model (ONNX Runtime sessions being created), a worker does not
    // stop within the pool's grace period and is terminated, and terminating a worker inside
    // ONNX Runtime aborts the whole process; while it writes records it is nearly done. So the
    // abort waits for the 'activations' phase, and a run cancelled later is discarded.
    const inner = new AbortController();
    let phase = '';
    const forwardAbort = () => {
      if (phase === 'activations' && !inner.signal.aborted) inner.abort(running.controller.signal.reason);
    };
    running.controller.signal.addEventListener('abort', forwardAbort, { once: true });
    try {
      update(null);
      let lastEmit = 0;
      let lastPhase = '';
      const records = await this.compute.dashboards(
        {
          checkpointDir: model.checkpointDir,
          transcoderDir: model.transcoderDir,
          corpus: p.corpus,
          maxTokens: p.maxTokens,
          provider: 'cpu',
        },
        {
          signal: inner.signal,
          onProgress: (progress) => {
            phase = progress.phase;
            if (running.controller.signal.aborted) forwardAbort();
            const now = Date.now();
            if (progress.phase === lastPhase && now - lastEmit < 200 && progress.done !== progress.total)
              return;
            lastEmit = now;
            lastPhase = progress.phase;
            this.store.jobs.updateProgress(job.id, progress);
            update(progress);
          },
        },
      );
      if (running.controller.signal.aborted) throw running.controller.signal.reason;
      this.store.db.transaction(() => {
        this.store.features.putDashboards(
          set.id,
          records
            .filter((r) => r.layer < set.nLayers && r.index < set.dTranscoder)
            .map((r) => ({ layer: r.layer, index: r.index, dashboard: r })),
        );
        this.store.jobs.complete(job.id, { stored: records.length });
      })();
      update(null);
      this.emit('library.changed', { entity: 'feature', id: `${set.id}:*` });
    } catch (e) {
      this.settleThrown(job, running, e, {
        exists: () => true,
        requeue: () => {},
        cancelled: () => update(null),
        failed: () => update(null),
      });
    } finally {
      this.running = null;
      settle();
    }
  }

  /** Marks `job` as the one running; `settle` resolves `running.done` when it has ended. */
  private startRunning(
    job: JobRecord,
    trace: TraceRecord,
    interventionId: number | null,
  ): { running: RunningJob; settle: () => void } {
    let settle!: () => void;
    const running: RunningJob = {
      job,
      traceId: trace.id,
      interventionId,
      projectId: trace.projectId,
      controller: new AbortController(),
      reason: null,
      done: new Promise<void>((resolve) => {
        settle = resolve;
      }),
    };
    this.running = running;
    return { running, settle };
  }

  /**
   * How a job that threw ends: back to the queue (the service is shutting down; it runs again
   * when the service starts), cancelled, or failed with a readable reason. `work` is the trace
   * or intervention the job computes, which may have been deleted meanwhile.
   */
  private settleThrown(
    job: JobRecord,
    running: RunningJob,
    e: unknown,
    work: {
      exists(): boolean;
      requeue(): void;
      cancelled(now: number): void;
      failed(now: number, error: TraceError): void;
    },
  ): void {
    const now = this.store.now();
    const still = work.exists();
    if (running.reason === 'shutdown') {
      this.store.jobs.interrupt(job.id);
      if (still) work.requeue();
    } else if (running.reason === 'cancel' || (isEngineError(e) && e.code === 'cancelled')) {
      this.store.jobs.cancel(job.id);
      if (still) work.cancelled(now);
    } else {
      const err = toApiError(e);
      const error = { code: err.engineCode ?? err.code, message: err.message };
      this.store.jobs.fail(job.id, error);
      if (still) work.failed(now, error);
      if (err.code === 'internal') this.opts.onBackgroundError?.(e);
    }
  }

  /** Stops the queue (a running trace goes back to the queue) and closes the compute backend. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stopRunning('shutdown');
    await this.loop;
    await this.compute.close();
    this.listeners.clear();
    this.lock?.release();
  }
}

/** The name import errors give the file: the user's base name (no folders), or a neutral one. */
export function importFileName(fileName: string | undefined): string {
  const base = fileName?.split(/[\\/]/).pop()?.trim();
  return base ? base : 'the imported JSON';
}
