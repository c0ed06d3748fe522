/**
 * The library: projects and their traces, search, live status and progress (from the API's
 * events), and the trace actions (start, cancel, re-trace, delete with undo, import, move to
 * another project, trace note). Project counts follow every change that moves a trace in or
 * out of a project (refetched, debounced).
 */
import { defineStore } from 'pinia';
import type { TraceTarget } from '../../../electron/api/contract.ts';
import { api } from '../api/inject.ts';
import type {
  ProjectRecord,
  TraceProgress,
  TraceRecord,
  TraceSettingsInput,
  TraceStatus,
} from '../api/types.ts';

/** A trace's attribution targets in one line (the library card), e.g. `Austin vs Dallas · " Austin"`. */
export function targetsSummary(targets: readonly TraceTarget[] | null | undefined): string {
  return (targets ?? [])
    .map((t) =>
      'token' in t ? (typeof t.token === 'number' ? `#${t.token}` : JSON.stringify(t.token)) : t.label,
    )
    .join(' · ');
}

/** Traces whose graph holds this feature of this transcoder set. */
export interface FeatureFilter {
  transcoderSetId: number;
  layer: number;
  index: number;
}

export interface LibraryFilters {
  query: string;
  tag: string;
  modelId: number | null;
  status: TraceStatus | '';
  feature: FeatureFilter | null;
}

let countsTimer: ReturnType<typeof setTimeout> | undefined;

export const useLibrary = defineStore('library', {
  state: () => ({
    projects: [] as ProjectRecord[],
    projectId: null as number | null,
    traces: [] as TraceRecord[],
    total: 0,
    tags: [] as Array<{ tag: string; count: number }>,
    filters: { query: '', tag: '', modelId: null, status: '', feature: null } as LibraryFilters,
    progress: {} as Record<number, TraceProgress>,
    loading: false,
    error: null as string | null,
    /** Trace the user just started from the form: opened when it is done. */
    awaitingOpen: null as number | null,
  }),
  getters: {
    byId: (s) => (id: number) => s.traces.find((t) => t.id === id) ?? null,
    active: (s) => s.traces.filter((t) => t.status === 'queued' || t.status === 'running'),
  },
  actions: {
    /** Subscribes to the backend's events (once per client). */
    subscribe(onTraceDone: (t: TraceRecord) => void): void {
      const client = api();
      client.on('trace.progress', ({ traceId, progress }) => {
        this.progress = { ...this.progress, [traceId]: progress };
      });
      client.on('trace.updated', ({ trace }) => {
        const i = this.traces.findIndex((t) => t.id === trace.id);
        // a new trace, or one moved to another project: the project counts change
        if (
          i < 0 ||
          this.traces[i].projectId !== trace.projectId ||
          this.traces[i].deletedAt !== trace.deletedAt
        )
          this.refreshCounts();
        if (i >= 0 && this.leftList(trace)) {
          this.traces.splice(i, 1);
          this.total--;
        } else if (i >= 0) this.traces.splice(i, 1, trace);
        else if (this.matches(trace)) {
          this.traces.unshift(trace);
          this.total++;
        }
        if (trace.status !== 'running' && this.progress[trace.id]) {
          const { [trace.id]: _, ...rest } = this.progress;
          this.progress = rest;
        }
        if (trace.status === 'done') onTraceDone(trace);
      });
      client.on('trace.deleted', ({ traceId }) => {
        this.refreshCounts();
        const before = this.traces.length;
        this.traces = this.traces.filter((t) => t.id !== traceId);
        if (this.traces.length < before) this.total--;
      });
      client.on('library.changed', ({ entity }) => {
        if (entity === 'project') void this.refreshProjects();
      });
    },
    /** Whether a listed trace no longer belongs here: moved to another project, or trashed. */
    leftList(t: TraceRecord): boolean {
      return (this.projectId !== null && t.projectId !== this.projectId) || t.deletedAt !== null;
    },
    /** Whether a trace that appeared by event belongs in the current list. */
    matches(t: TraceRecord): boolean {
      const f = this.filters;
      if (this.projectId !== null && t.projectId !== this.projectId) return false;
      // the API searches prompts and notes alike
      if (f.query && !`${t.prompt}\n${t.notes}`.toLowerCase().includes(f.query.toLowerCase())) return false;
      if (f.tag && !t.tags.includes(f.tag)) return false;
      if (f.modelId !== null && t.modelId !== f.modelId) return false;
      if (f.status && t.status !== f.status) return false;
      // Whether a new trace's graph holds the feature shows on the next refresh.
      if (f.feature) return false;
      return t.deletedAt === null;
    },
    /** Refetches the projects (their trace counts) soon, once for a burst of changes. */
    refreshCounts(): void {
      clearTimeout(countsTimer);
      countsTimer = setTimeout(() => void this.refreshProjects().catch(() => undefined), 150);
    },
    /** Files a trace under another project (the list drops it when it no longer matches). */
    async move(id: number, projectId: number): Promise<TraceRecord> {
      const t = await api().call('traces.update', { id, projectId });
      const i = this.traces.findIndex((x) => x.id === id);
      if (i >= 0 && this.leftList(t)) {
        this.traces.splice(i, 1);
        this.total--;
      } else if (i >= 0) this.traces.splice(i, 1, t);
      await this.refreshProjects();
      return t;
    },
    /** The trace-level note (searchable with the prompts). */
    async setNotes(id: number, notes: string): Promise<TraceRecord> {
      const t = await api().call('traces.update', { id, notes });
      const i = this.traces.findIndex((x) => x.id === id);
      if (i >= 0) this.traces.splice(i, 1, t);
      return t;
    },
    async refreshProjects(): Promise<void> {
      this.projects = await api().call('projects.list', {});
      if (this.projectId !== null && !this.projects.some((p) => p.id === this.projectId))
        this.projectId = null;
    },
    async refresh(): Promise<void> {
      this.loading = true;
      try {
        const f = this.filters;
        const [list, tags] = await Promise.all([
          api().call('traces.list', {
            projectId: this.projectId ?? undefined,
            query: f.query.trim() || undefined,
            tags: f.tag ? [f.tag] : undefined,
            modelId: f.modelId ?? undefined,
            status: f.status || undefined,
            transcoderSetId: f.feature?.transcoderSetId,
            feature: f.feature ? { layer: f.feature.layer, index: f.feature.index } : undefined,
            limit: 200,
          }),
          api().call('traces.tags', {}),
        ]);
        this.traces = list.traces;
        this.total = list.total;
        this.tags = tags;
        this.error = null;
        const running = list.traces.filter((t) => t.status === 'running' && t.progress);
        for (const t of running) if (!this.progress[t.id] && t.progress) this.progress[t.id] = t.progress;
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e);
      } finally {
        this.loading = false;
      }
    },
    async createProject(name: string): Promise<ProjectRecord> {
      const p = await api().call('projects.create', { name });
      await this.refreshProjects();
      this.projectId = p.id;
      await this.refresh();
      return p;
    },
    async start(req: {
      modelId: number;
      prompt: string;
      settings: TraceSettingsInput;
      tags?: string[];
    }): Promise<TraceRecord> {
      const t = await api().call('traces.start', {
        modelId: req.modelId,
        prompt: req.prompt,
        settings: req.settings,
        tags: req.tags?.length ? req.tags : undefined,
        projectId: this.projectId ?? undefined,
      });
      this.awaitingOpen = t.id;
      this.upsert(t);
      return t;
    },
    async retrace(id: number, settings: TraceSettingsInput): Promise<TraceRecord> {
      const t = await api().call('traces.retrace', { id, settings });
      this.awaitingOpen = t.id;
      this.upsert(t);
      return t;
    },
    /** A copy of a finished trace (graph, views, annotations) in the current project. */
    async duplicate(id: number): Promise<TraceRecord> {
      const t = await api().call('traces.duplicate', { id, projectId: this.projectId ?? undefined });
      this.upsert(t);
      return t;
    },
    upsert(t: TraceRecord): void {
      const i = this.traces.findIndex((x) => x.id === t.id);
      if (i >= 0) this.traces.splice(i, 1, t);
      else {
        this.traces.unshift(t);
        this.total++;
      }
    },
    async cancel(id: number): Promise<void> {
      this.upsert(await api().call('traces.cancel', { id }));
    },
    /** Moves a trace to the trash; returns the undo. */
    async remove(id: number): Promise<() => Promise<void>> {
      await api().call('traces.delete', { id });
      // The server's trace.deleted (sent before the reply) may have removed it already.
      const before = this.traces.length;
      this.traces = this.traces.filter((t) => t.id !== id);
      if (this.traces.length < before) this.total--;
      return async () => {
        this.upsert(await api().call('traces.restore', { id }));
      };
    },
    async tag(id: number, add: string[], remove: string[] = []): Promise<void> {
      this.upsert(await api().call('traces.tag', { id, add, remove }));
      this.tags = await api().call('traces.tags', {});
    },
    async importJson(json: string, fileName?: string): Promise<{ trace: TraceRecord; notes: string[] }> {
      const r = await api().call('graphs.importJson', {
        json,
        fileName,
        projectId: this.projectId ?? undefined,
      });
      this.upsert(r.trace);
      return r;
    },
    async exportJson(traceId: number, nodeThreshold?: number, edgeThreshold?: number) {
      return api().call('graphs.exportJson', { traceId, nodeThreshold, edgeThreshold });
    },
  },
});
