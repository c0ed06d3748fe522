/**
 * Test helper (imported by *.test.ts only, never by the app): an in-memory API client for the
 * stores' unit tests. `FakeApi` records the calls, answers each method with the handler a test
 * (or `FakeLibrary`, …) installs, rejects the others with an ApiError like the server's, and
 * emits events the way the server pushes them: an event a handler emits reaches the listeners
 * before the call's reply, as on the wire.
 */
import { ApiError } from '../../../electron/api/api-error.ts';
import { packEdges } from '../../../electron/api/packed-edges.ts';
import { ApiEventListeners } from '../../../electron/api/transports/websocket-client.ts';
import type { ConnectionStatus, ManagedClient } from './transport.ts';
import {
  type Annotations,
  type ApiEvents,
  DEFAULT_SETTINGS,
  type EventName,
  type GraphView,
  type InterventionOutcome,
  type InterventionRecord,
  type MethodName,
  type Params,
  type ProjectRecord,
  type Result,
  type TraceDetail,
  type TraceProgress,
  type TraceRecord,
  type ViewNode,
} from './types.ts';

type Handler<M extends MethodName> = (params: Params<M>) => Result<M> | Promise<Result<M>>;

export class FakeApi implements ManagedClient {
  status: ConnectionStatus = { state: 'open', detail: 'in-memory' };
  private readonly statusListeners = new Set<(s: ConnectionStatus) => void>();
  readonly calls: Array<{ method: MethodName; params: unknown }> = [];
  private readonly events = new ApiEventListeners();
  private readonly handlers = new Map<MethodName, Handler<MethodName>>();

  /** Answers `method` with `handler` (replacing an earlier one). */
  handle<M extends MethodName>(method: M, handler: Handler<M>): this {
    this.handlers.set(method, handler as unknown as Handler<MethodName>);
    return this;
  }

  call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
    // Params and results cross as JSON, as on the wire: no shared objects, no reactive proxies.
    const sent = wire(params) as Params<M>;
    this.calls.push({ method, params: sent });
    const h = this.handlers.get(method) as Handler<M> | undefined;
    if (!h) return Promise.reject(new ApiError('unknown_method', `unknown method ${method}`));
    // Asynchronous like a real transport, and a throwing handler becomes a rejection.
    return Promise.resolve()
      .then(() => h(sent))
      .then((r) => wire(r) as Result<M>);
  }

  /** The handler answering `method` now (to wrap it: delay or fail some answers). */
  handlerOf<M extends MethodName>(method: M): Handler<M> {
    const h = this.handlers.get(method) as Handler<M> | undefined;
    if (!h) throw new Error(`no handler for ${method}`);
    return h;
  }

  /** The params of every call of `method`, in order. */
  paramsOf<M extends MethodName>(method: M): Params<M>[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.params as Params<M>);
  }

  on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
    return this.events.on(event, listener);
  }

  emit<E extends EventName>(event: E, data: ApiEvents[E]): void {
    this.events.emit(event, data);
  }

  onStatus(listener: (s: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** The connection changes state (lost, back) as a transport reports it. */
  setStatus(status: ConnectionStatus): void {
    this.status = status;
    for (const l of this.statusListeners) l(status);
  }

  close(): void {}
}

/** A value as it arrives on the other side of the wire (undefined fields dropped). */
function wire(v: unknown): unknown {
  return v === undefined ? null : JSON.parse(JSON.stringify(v));
}

/** A finished trace record with neutral defaults for every field the test does not set. */
export function traceRecord(over: Partial<TraceRecord> & Pick<TraceRecord, 'id'>): TraceDetail {
  return {
    projectId: 1,
    modelId: 1,
    transcoderSetId: 1,
    source: 'trace',
    prompt: `prompt ${over.id}`,
    tokenIds: null,
    settings: { ...DEFAULT_SETTINGS },
    status: 'done',
    progress: null,
    timings: null,
    error: null,
    notes: '',
    tags: [],
    createdAt: over.id,
    updatedAt: over.id,
    startedAt: null,
    finishedAt: null,
    deletedAt: null,
    graph: null,
    views: [],
    ...over,
  };
}

/**
 * The library part of the backend, in memory: projects with live trace counts, traces with
 * search / move / notes / tags / trash, started traces (queued until the test finishes them),
 * re-traces and copies. It emits what the service emits: `trace.updated` on every change of a
 * trace, `trace.deleted` when one goes to the trash, `library.changed` for projects.
 */
export class FakeLibrary {
  readonly projects = new Map<number, ProjectRecord>();
  readonly traces = new Map<number, TraceDetail>();
  private nextId = 100;

  constructor(readonly api: FakeApi) {
    this.addProject('Default');
    api
      .handle('projects.list', () => [...this.projects.values()].map((p) => this.withCount(p)))
      .handle('projects.create', ({ name }) => {
        const p = this.addProject(name);
        api.emit('library.changed', { entity: 'project', id: p.id });
        return this.withCount(p);
      })
      .handle('traces.list', (q) => {
        const hits = [...this.traces.values()]
          .filter(
            (t) =>
              t.deletedAt === null &&
              (q.projectId === undefined || t.projectId === q.projectId) &&
              (!q.query || `${t.prompt}\n${t.notes}`.toLowerCase().includes(q.query.toLowerCase())) &&
              (!q.tags || q.tags.every((tag) => t.tags.includes(tag))) &&
              (q.status === undefined || t.status === q.status),
          )
          .sort((a, b) => b.id - a.id);
        return { traces: hits.slice(0, q.limit ?? 200).map(record), total: hits.length };
      })
      .handle('traces.tags', () => {
        const counts = new Map<string, number>();
        for (const t of this.traces.values())
          if (t.deletedAt === null) for (const tag of t.tags) counts.set(tag, (counts.get(tag) ?? 0) + 1);
        return [...counts].map(([tag, count]) => ({ tag, count }));
      })
      .handle('traces.get', ({ id }) => this.get(id))
      .handle('traces.update', ({ id, projectId, notes }) =>
        this.change(id, {
          ...(projectId === undefined ? {} : { projectId }),
          ...(notes === undefined ? {} : { notes }),
        }),
      )
      .handle('traces.tag', ({ id, add, remove }) => {
        const t = this.get(id);
        const tags = [...new Set([...t.tags, ...(add ?? [])])].filter((x) => !(remove ?? []).includes(x));
        return this.change(id, { tags });
      })
      .handle('traces.start', (p) =>
        this.add({
          modelId: p.modelId,
          prompt: p.prompt ?? '',
          projectId: p.projectId ?? 1,
          tags: p.tags ?? [],
          status: 'queued',
          settings: { ...DEFAULT_SETTINGS, ...p.settings },
        }),
      )
      .handle('traces.retrace', ({ id, settings }) => {
        const t = this.get(id);
        return this.add({
          modelId: t.modelId,
          prompt: t.prompt,
          projectId: t.projectId,
          status: 'queued',
          settings: { ...t.settings, ...settings },
        });
      })
      .handle('traces.duplicate', ({ id, projectId }) => {
        const t = this.get(id);
        return this.add({ ...record(t), id: undefined, projectId: projectId ?? t.projectId });
      })
      .handle('traces.cancel', ({ id }) => this.change(id, { status: 'cancelled' }))
      .handle('traces.delete', ({ id }) => {
        this.change(id, { deletedAt: Date.now() }, false);
        api.emit('trace.deleted', { traceId: id, permanent: false });
        return { id, permanent: false };
      })
      .handle('traces.restore', ({ id }) => this.change(id, { deletedAt: null }));
  }

  addProject(name: string): ProjectRecord {
    const id = this.projects.size + 1;
    const p: ProjectRecord = { id, name, description: '', createdAt: id, updatedAt: id, traceCount: 0 };
    this.projects.set(id, p);
    return p;
  }

  /** Puts a trace in the library (no event: as if it was there before the store looked). */
  seed(over: Partial<TraceRecord> = {}): TraceDetail {
    const t = traceRecord({ ...over, id: over.id ?? this.nextId++ });
    this.traces.set(t.id, t);
    return t;
  }

  /** Changes a trace as the backend would (a trace finishing, …) and emits `trace.updated`. */
  change(id: number, patch: Partial<TraceRecord>, emit = true): TraceRecord {
    const t = { ...this.get(id), ...patch, updatedAt: Date.now() };
    this.traces.set(id, t);
    if (emit) this.api.emit('trace.updated', { trace: record(t) });
    return record(t);
  }

  get(id: number): TraceDetail {
    const t = this.traces.get(id);
    if (!t) throw new ApiError('not_found', `trace ${id} not found`, { field: 'id' });
    return t;
  }

  private add(over: Partial<TraceRecord>): TraceRecord {
    const { id: _, ...rest } = over;
    const t = this.seed(rest);
    this.api.emit('trace.updated', { trace: record(t) });
    return record(t);
  }

  private withCount(p: ProjectRecord): ProjectRecord {
    const traceCount = [...this.traces.values()].filter(
      (t) => t.projectId === p.id && t.deletedAt === null,
    ).length;
    return { ...p, traceCount };
  }
}

/** A TraceDetail as the TraceRecord the list methods return (a copy: stores may keep it). */
function record(t: TraceDetail | TraceRecord): TraceRecord {
  const { views: _, ...r } = t as TraceDetail;
  return structuredClone(r);
}

/**
 * The interventions part of the backend, in memory: started interventions stay queued until
 * the test moves them on (`progress`, `finish`); cancel and delete as the service does them. It
 * emits `intervention.progress` and `intervention.updated` (with `deleted` on a delete).
 */
export class FakeInterventions {
  readonly records = new Map<number, InterventionRecord>();
  private nextId = 1;

  constructor(readonly api: FakeApi) {
    api
      .handle('interventions.start', (input) => {
        const r: InterventionRecord = {
          id: this.nextId++,
          traceId: input.traceId,
          label: input.label ?? `${input.edits.length} edit(s)`,
          spec: {
            loop: input.loop ?? 'closed',
            edits: input.edits,
            freezeAttention: input.freezeAttention ?? false,
            generate: input.generate ?? 0,
            top: input.top ?? 10,
          },
          status: 'queued',
          progress: null,
          error: null,
          result: null,
          createdAt: this.nextId,
          startedAt: null,
          finishedAt: null,
        };
        return this.put(r);
      })
      .handle('interventions.list', ({ traceId }) =>
        [...this.records.values()]
          .filter((r) => r.traceId === traceId)
          .sort((a, b) => b.createdAt - a.createdAt)
          .map((r) => structuredClone(r)),
      )
      .handle('interventions.get', ({ id }) => structuredClone(this.get(id)))
      .handle('interventions.cancel', ({ id }) => this.put({ ...this.get(id), status: 'cancelled' }))
      .handle('interventions.delete', ({ id }) => {
        const r = this.get(id);
        this.records.delete(id);
        api.emit('intervention.updated', { intervention: structuredClone(r), deleted: true });
        return { id, traceId: r.traceId };
      });
  }

  get(id: number): InterventionRecord {
    const r = this.records.get(id);
    if (!r) throw new ApiError('not_found', `intervention ${id} not found`, { field: 'id' });
    return r;
  }

  /** The intervention runs: status running, and a progress event (`emit` false: the event is lost). */
  progress(id: number, progress: TraceProgress, emit = true): void {
    const r = { ...this.get(id), status: 'running' as const, progress };
    this.records.set(id, r);
    if (emit) {
      this.api.emit('intervention.progress', { interventionId: id, traceId: r.traceId, progress });
      this.api.emit('intervention.updated', { intervention: structuredClone(r) });
    }
  }

  /** The intervention finishes with `result` (`emit` false: the event is lost). */
  finish(id: number, result: InterventionOutcome, emit = true): InterventionRecord {
    const r = { ...this.get(id), status: 'done' as const, progress: null, result };
    this.records.set(id, r);
    if (emit) this.api.emit('intervention.updated', { intervention: structuredClone(r) });
    return r;
  }

  private put(r: InterventionRecord): InterventionRecord {
    this.records.set(r.id, r);
    this.api.emit('intervention.updated', { intervention: structuredClone(r) });
    return structuredClone(r);
  }
}

/**
 * Traces with graphs, in memory: each trace has the nodes of its unpruned graph (influence =
 * cumulative share, lower = more important) and a chain of edges between consecutive nodes;
 * graphs.view prunes them at the asked thresholds (the trace's own by default) as the service
 * does: tokens and logits stay, features and errors below the node threshold stay.
 */
export class FakeGraphs {
  readonly traces = new Map<number, TraceDetail>();
  readonly graphs = new Map<number, ViewNode[]>();
  readonly annotations = new Map<number, Annotations>();

  constructor(readonly api: FakeApi) {
    api
      .handle('traces.get', ({ id }) => {
        const t = this.traces.get(id);
        if (!t) throw new ApiError('not_found', `trace ${id} not found`, { field: 'id' });
        return structuredClone(t);
      })
      .handle('annotations.get', ({ traceId }) => structuredClone(this.annotationsOf(traceId)))
      .handle('annotations.update', ({ traceId, ...changes }) => {
        const a = { ...this.annotationsOf(traceId), ...changes };
        this.annotations.set(traceId, a);
        return structuredClone(a);
      })
      .handle('graphs.nodeIds', ({ traceId }) => ({ traceId, ids: this.nodesOf(traceId).map((n) => n.id) }))
      .handle('graphs.view', (p) => {
        const t = this.traces.get(p.traceId);
        if (!t) throw new ApiError('not_found', `trace ${p.traceId} not found`, { field: 'traceId' });
        const nt = p.nodeThreshold ?? t.settings.nodeThreshold;
        const et = p.edgeThreshold ?? t.settings.edgeThreshold;
        const nodes = this.nodesOf(p.traceId).filter(
          (n) => n.kind === 'token' || n.kind === 'logit' || (n.influence ?? 0) < nt,
        );
        const edges = { source: [] as number[], target: [] as number[], weight: [] as number[] };
        for (let i = 1; i < nodes.length; i++) {
          edges.source.push(i - 1);
          edges.target.push(i);
          edges.weight.push(1 / i);
        }
        const view: GraphView = {
          traceId: p.traceId,
          nodeThreshold: nt,
          edgeThreshold: et,
          pinned: [],
          nLayers: 4,
          nPositions: 3,
          promptTokens: ['<bos>', 'The', ' cat'],
          unprunedNodes: this.nodesOf(p.traceId).length,
          nodes: structuredClone(nodes),
          edges,
          replacementScore: null,
          completenessScore: null,
          cached: false,
          ...(t.source === 'import' ? { imported: true } : {}),
        };
        if (p.edges === 'packed') {
          // As the service does: the edges as base64 typed arrays, `edges` left empty.
          view.packedEdges = packEdges({
            source: Uint32Array.from(edges.source),
            target: Uint32Array.from(edges.target),
            weight: Float32Array.from(edges.weight),
          });
          view.edges = { source: [], target: [], weight: [] };
        }
        return view;
      });
  }

  /** A finished trace whose graph has `nodes` (by default its settings are the defaults). */
  add(over: Partial<TraceRecord> & Pick<TraceRecord, 'id'>, nodes: ViewNode[]): TraceDetail {
    const t = traceRecord(over);
    this.traces.set(t.id, t);
    this.graphs.set(t.id, nodes);
    return t;
  }

  private nodesOf(traceId: number): ViewNode[] {
    const nodes = this.graphs.get(traceId);
    if (!nodes) throw new ApiError('not_found', `trace ${traceId} not found`, { field: 'traceId' });
    return nodes;
  }

  private annotationsOf(traceId: number): Annotations {
    const none: Annotations = {
      traceId,
      pinned: [],
      supernodes: [],
      layout: {},
      labels: {},
      notes: {},
      updatedAt: null,
    };
    return this.annotations.get(traceId) ?? none;
  }
}
