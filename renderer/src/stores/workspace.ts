/**
 * The graph workspace: the open panes (one, or several side by side in compare), their
 * thresholds and stored views, the hovered / selected node (shared by every pane), the
 * subgraph pane, and the URL hash that reopens all of it after a reload.
 *
 * Big data (views, filters, layouts) is kept out of Vue's deep reactivity (markRaw): the
 * panes redraw from it when their version counters change.
 */
import { defineStore } from 'pinia';
import { markRaw } from 'vue';
import type { Params } from '../../../electron/api/contract.ts';
import { decodeViewEdges, mergedEdgeArrays } from '../../../electron/api/packed-edges.ts';
import { api, errorMessage } from '../api/inject.ts';
import type { GraphView, TraceDetail } from '../api/types.ts';
import type { ClientDiff } from '../graph/diff-style.ts';
import { type FilterResult, filterView, needsRefetch } from '../graph/filter.ts';
import { type Layout, layeredLayout } from '../graph/layout.ts';
import { useAnnotations } from './annotations.ts';

export interface Pane {
  id: number;
  traceId: number;
  nodeThreshold: number;
  edgeThreshold: number;
  view: GraphView | null;
  filter: FilterResult | null;
  /** Bumped whenever view or filter changes (the pane redraws on it). */
  version: number;
  loading: boolean;
  error: string | null;
}

/** Compare's diff mode: one merged graph of two panes' traces (at their thresholds). */
export interface DiffState {
  open: boolean;
  /** The panes compared (A, B). */
  paneA: number | null;
  paneB: number | null;
  /** The diff, its merged edges decoded into typed arrays (asked for packed). */
  result: ClientDiff | null;
  loading: boolean;
  error: string | null;
  /** Bumped when result changes. */
  version: number;
}

/** Longest change lists the diff view asks for (the merged graph holds everything). */
export const DIFF_LIST_TOP = 200;
let diffSeq = 0;

export interface Selection {
  traceId: number;
  nodeId: string;
}

let nextPaneId = 1;
const fetchTimers = new Map<number, ReturnType<typeof setTimeout>>();
const fetchSeq = new Map<number, number>();
const REFETCH_DELAY_MS = 250;
/** Panes whose filter is recomputed on the next animation frame (slider input is coalesced). */
const pendingFilter = new Set<number>();
let filterFrame: number | null = null;
const nextFrame = (f: () => void): number =>
  typeof requestAnimationFrame === 'function'
    ? requestAnimationFrame(f)
    : (setTimeout(f, 0) as unknown as number);

/** A view with its edges packed on the wire and decoded here into typed arrays (no JSON number arrays). */
const loadView = async (p: Omit<Params<'graphs.view'>, 'edges'>): Promise<GraphView> =>
  decodeViewEdges(await api().call('graphs.view', { ...p, edges: 'packed' }));
const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const round3 = (v: number) => Math.round(v * 1000) / 1000;

export const useWorkspace = defineStore('workspace', {
  state: () => ({
    panes: [] as Pane[],
    traces: {} as Record<number, TraceDetail>,
    layouts: {} as Record<number, Layout>,
    /** Every node id of a trace's unpruned graph (graphs.nodeIds), for compare's marks. */
    nodeIds: {} as Record<number, ReadonlySet<string>>,
    layoutVersion: 0,
    hovered: null as string | null,
    selected: null as Selection | null,
    subgraphOpen: false,
    diff: {
      open: false,
      paneA: null,
      paneB: null,
      result: null,
      loading: false,
      error: null,
      version: 0,
    } as DiffState,
    /** Bumped to ask the panes to centre on a node (search, inspector). */
    focusRequest: { nodeId: '', seq: 0 },
  }),
  getters: {
    mainPane: (s): Pane | null => s.panes[0] ?? null,
    comparing: (s) => s.panes.length > 1,
    paneOf: (s) => (traceId: number) => s.panes.find((p) => p.traceId === traceId && p.view) ?? null,
    /** The hash that reopens the workspace. */
    route(s): string {
      if (s.panes.length === 0) return '#/';
      const sg = s.subgraphOpen ? '&subgraph=1' : '';
      if (s.panes.length === 1) {
        const p = s.panes[0];
        return `#/trace/${p.traceId}?nt=${p.nodeThreshold}&et=${p.edgeThreshold}${sg}`;
      }
      const spec = s.panes.map((p) => `${p.traceId}:${p.nodeThreshold}:${p.edgeThreshold}`).join(',');
      const ia = s.panes.findIndex((p) => p.id === s.diff.paneA);
      const ib = s.panes.findIndex((p) => p.id === s.diff.paneB);
      const diff = s.diff.open && ia >= 0 && ib >= 0 ? `&diff=${ia},${ib}` : '';
      return `#/compare?panes=${spec}${sg}${diff}`;
    },
  },
  actions: {
    /** Opens a trace alone (leaving compare). Thresholds default to the trace's own. */
    async openTrace(traceId: number, nodeThreshold?: number, edgeThreshold?: number): Promise<void> {
      this.closeAll();
      this.selected = null;
      await this.addPane(traceId, nodeThreshold, edgeThreshold);
    },
    async addPane(traceId: number, nodeThreshold?: number, edgeThreshold?: number): Promise<Pane> {
      const pane: Pane = {
        id: nextPaneId++,
        traceId,
        nodeThreshold: nodeThreshold ?? Number.NaN,
        edgeThreshold: edgeThreshold ?? Number.NaN,
        view: null,
        filter: null,
        version: 0,
        loading: true,
        error: null,
      };
      this.panes.push(pane);
      await this.loadPane(pane.id);
      return this.panes.find((p) => p.id === pane.id) ?? pane;
    },
    /** Opens a compare pane: the same trace at other thresholds, or another trace. */
    async addComparePane(traceId?: number, nodeThreshold?: number, edgeThreshold?: number): Promise<void> {
      const base = this.panes[this.panes.length - 1];
      if (!base && traceId === undefined) return;
      const id = traceId ?? base.traceId;
      let nt = nodeThreshold;
      if (nt === undefined && id === base?.traceId) nt = round3(Math.max(0.1, base.nodeThreshold - 0.2));
      await this.addPane(id, nt, edgeThreshold ?? (id === base?.traceId ? base.edgeThreshold : undefined));
    },
    /**
     * Shows another trace in a pane, in place: the panes keep their order (compare reads left
     * to right) and the pane starts at the new trace's own thresholds.
     */
    async setPaneTrace(paneId: number, traceId: number): Promise<void> {
      const pane = this.panes.find((p) => p.id === paneId);
      if (!pane || pane.traceId === traceId) return;
      const old = pane.traceId;
      clearTimeout(fetchTimers.get(paneId));
      fetchSeq.set(paneId, (fetchSeq.get(paneId) ?? 0) + 1);
      pane.traceId = traceId;
      pane.view = null;
      pane.filter = null;
      pane.nodeThreshold = Number.NaN;
      pane.edgeThreshold = Number.NaN;
      pane.version++;
      this.relayout(old);
      await this.loadPane(paneId);
      if (this.diff.open && (this.diff.paneA === paneId || this.diff.paneB === paneId)) await this.loadDiff();
    },
    /** Opens the diff of two panes (default: the first two). */
    async openDiff(paneA?: number, paneB?: number): Promise<void> {
      const a = paneA ?? this.panes[0]?.id;
      const b = paneB ?? this.panes.find((p) => p.id !== a)?.id;
      if (a === undefined || b === undefined) return;
      this.diff.open = true;
      this.diff.paneA = a;
      this.diff.paneB = b;
      await this.loadDiff();
    },
    closeDiff(): void {
      diffSeq++;
      this.diff = {
        open: false,
        paneA: null,
        paneB: null,
        result: null,
        loading: false,
        error: null,
        version: this.diff.version + 1,
      };
    },
    /** (Re)computes the open diff from its panes' traces and thresholds. */
    async loadDiff(): Promise<void> {
      const a = this.panes.find((p) => p.id === this.diff.paneA);
      const b = this.panes.find((p) => p.id === this.diff.paneB);
      if (!this.diff.open || !a || !b) return;
      const seq = ++diffSeq;
      this.diff.loading = true;
      this.diff.error = null;
      const side = (p: Pane) => ({
        traceId: p.traceId,
        ...(Number.isNaN(p.nodeThreshold) ? {} : { nodeThreshold: p.nodeThreshold }),
        ...(Number.isNaN(p.edgeThreshold) ? {} : { edgeThreshold: p.edgeThreshold }),
      });
      try {
        const result: ClientDiff = await api().call('graphs.diff', {
          a: side(a),
          b: side(b),
          top: DIFF_LIST_TOP,
          merged: true,
          edges: 'packed',
        });
        if (seq !== diffSeq) return;
        // Typed arrays here (checked: lengths, node indices), not objects on the wire.
        if (result.merged) {
          result.mergedEdges = mergedEdgeArrays(result.merged);
          delete result.merged.packedEdges;
        }
        this.diff.result = markRaw(result);
      } catch (e) {
        if (seq !== diffSeq) return;
        this.diff.result = null;
        this.diff.error = errorMessage(e);
      } finally {
        if (seq === diffSeq) {
          this.diff.loading = false;
          this.diff.version++;
        }
      }
    },
    closePane(paneId: number): void {
      if (this.diff.paneA === paneId || this.diff.paneB === paneId) this.closeDiff();
      const p = this.panes.find((x) => x.id === paneId);
      this.panes = this.panes.filter((x) => x.id !== paneId);
      clearTimeout(fetchTimers.get(paneId));
      fetchTimers.delete(paneId);
      if (p) this.relayout(p.traceId);
    },
    closeAll(): void {
      this.closeDiff();
      for (const p of this.panes) clearTimeout(fetchTimers.get(p.id));
      this.panes = [];
      this.layouts = {};
    },
    /** Loads a trace's node ids once (compare of different traces). */
    async ensureNodeIds(traceId: number): Promise<void> {
      if (this.nodeIds[traceId]) return;
      try {
        const r = await api().call('graphs.nodeIds', { traceId });
        this.nodeIds[traceId] = markRaw(new Set(r.ids));
      } catch {
        // Unknown: compare marks the node as not in that trace (the safer reading).
      }
    },
    async loadTrace(traceId: number, force = false): Promise<TraceDetail> {
      if (!force && this.traces[traceId]) return this.traces[traceId];
      const t = await api().call('traces.get', { id: traceId });
      this.traces[traceId] = t;
      return t;
    },
    async loadPane(paneId: number): Promise<void> {
      const pane = this.panes.find((p) => p.id === paneId);
      if (!pane) return;
      pane.loading = true;
      pane.error = null;
      try {
        const trace = await this.loadTrace(pane.traceId);
        await useAnnotations().ensure(pane.traceId);
        if (Number.isNaN(pane.nodeThreshold)) pane.nodeThreshold = trace.settings.nodeThreshold;
        if (Number.isNaN(pane.edgeThreshold)) pane.edgeThreshold = trace.settings.edgeThreshold;
        const view = await this.fetchView(pane.traceId, pane.nodeThreshold, pane.edgeThreshold, trace);
        const live = this.panes.find((p) => p.id === paneId);
        if (!live) return;
        live.view = markRaw(view);
        if (view.imported) {
          // Imported graphs exist at their own thresholds only: tighter is filtered here.
          live.nodeThreshold = Math.min(live.nodeThreshold, view.nodeThreshold);
          live.edgeThreshold = Math.min(live.edgeThreshold, view.edgeThreshold);
        }
        this.relayout(live.traceId);
        this.refilter(live.id);
      } catch (e) {
        const live = this.panes.find((p) => p.id === paneId);
        if (live) live.error = errorMessage(e);
      } finally {
        const live = this.panes.find((p) => p.id === paneId);
        if (live) live.loading = false;
      }
    },
    async fetchView(traceId: number, nt: number, et: number, trace: TraceDetail): Promise<GraphView> {
      if (trace.source === 'import') return loadView({ traceId });
      return loadView({ traceId, nodeThreshold: nt, edgeThreshold: et });
    },
    /** Recomputes a pane's client-side filter from its stored view and thresholds. */
    refilter(paneId: number): void {
      const pane = this.panes.find((p) => p.id === paneId);
      if (!pane?.view) return;
      const pinned = useAnnotations().pinnedSet(pane.traceId);
      pane.filter = markRaw(filterView(pane.view, pane.nodeThreshold, pane.edgeThreshold, pinned));
      pane.version++;
    },
    refilterTrace(traceId: number): void {
      for (const p of this.panes) if (p.traceId === traceId) this.refilter(p.id);
    },
    /** Shared positions for every pane of a trace (union of their stored views). */
    relayout(traceId: number): void {
      const views = this.panes.filter((p) => p.traceId === traceId && p.view).map((p) => p.view as GraphView);
      if (views.length === 0) {
        delete this.layouts[traceId];
      } else {
        this.layouts[traceId] = markRaw(layeredLayout(views));
      }
      this.layoutVersion++;
      for (const p of this.panes) if (p.traceId === traceId) p.version++;
    },
    /**
     * Slider input: filters the stored view at once; when the thresholds are looser than what
     * is stored, asks the API to re-prune (debounced) and swaps the view in when it arrives.
     */
    setThresholds(paneId: number, nodeThreshold: number, edgeThreshold: number): void {
      const pane = this.panes.find((p) => p.id === paneId);
      if (!pane) return;
      pane.nodeThreshold = round3(clamp01(nodeThreshold));
      pane.edgeThreshold = round3(clamp01(edgeThreshold));
      if (pane.view?.imported) {
        pane.nodeThreshold = Math.min(pane.nodeThreshold, pane.view.nodeThreshold);
        pane.edgeThreshold = Math.min(pane.edgeThreshold, pane.view.edgeThreshold);
      }
      pendingFilter.add(paneId);
      if (filterFrame === null) {
        filterFrame = nextFrame(() => {
          filterFrame = null;
          const ids = [...pendingFilter];
          pendingFilter.clear();
          for (const id of ids) this.refilter(id);
        });
      }
      clearTimeout(fetchTimers.get(paneId));
      if (
        pane.view &&
        !pane.view.imported &&
        needsRefetch(pane.view, pane.nodeThreshold, pane.edgeThreshold)
      ) {
        fetchTimers.set(
          paneId,
          setTimeout(() => void this.refetch(paneId), REFETCH_DELAY_MS),
        );
      }
    },
    async refetch(paneId: number): Promise<void> {
      const pane = this.panes.find((p) => p.id === paneId);
      if (!pane) return;
      const seq = (fetchSeq.get(paneId) ?? 0) + 1;
      fetchSeq.set(paneId, seq);
      const { traceId, nodeThreshold: nt, edgeThreshold: et } = pane;
      pane.loading = true;
      try {
        const view = await loadView({ traceId, nodeThreshold: nt, edgeThreshold: et });
        const live = this.panes.find((p) => p.id === paneId);
        if (!live || fetchSeq.get(paneId) !== seq) return;
        live.view = markRaw(view);
        live.error = null;
        this.relayout(traceId);
        this.refilter(paneId);
      } catch (e) {
        const live = this.panes.find((p) => p.id === paneId);
        if (live) live.error = errorMessage(e);
      } finally {
        const live = this.panes.find((p) => p.id === paneId);
        if (live && fetchSeq.get(paneId) === seq) live.loading = false;
      }
    },
    hover(id: string | null): void {
      if (this.hovered !== id) this.hovered = id;
    },
    select(traceId: number, nodeId: string | null): void {
      this.selected = nodeId === null ? null : { traceId, nodeId };
    },
    /** Selects a node and centres the panes on it. */
    focus(traceId: number, nodeId: string): void {
      this.select(traceId, nodeId);
      this.focusRequest = { nodeId, seq: this.focusRequest.seq + 1 };
    },
    /** A label changed: patch it into the stored views that hold the node (no refetch). */
    patchLabel(match: (traceId: number, n: GraphView['nodes'][number]) => boolean, label: string): void {
      for (const p of this.panes) {
        if (!p.view) continue;
        let changed = false;
        for (const n of p.view.nodes) {
          if (match(p.traceId, n)) {
            n.label = label;
            changed = true;
          }
        }
        if (changed) p.version++;
      }
    },
    clearSelection(): void {
      this.selected = null;
      this.hovered = null;
    },
    /** Restores the workspace from a hash written by `route`. */
    async restore(hash: string): Promise<boolean> {
      const m = /^#\/(trace\/(\d+)|compare)(?:\?(.*))?$/.exec(hash);
      if (!m) return false;
      const q = new URLSearchParams(m[3] ?? '');
      this.subgraphOpen = q.get('subgraph') === '1';
      const num = (v: string | null | undefined) =>
        v === null || v === undefined || v === '' ? undefined : Number(v);
      if (m[2]) {
        await this.openTrace(Number(m[2]), num(q.get('nt')), num(q.get('et')));
        return true;
      }
      const specs = (q.get('panes') ?? '').split(',').filter(Boolean);
      this.closeAll();
      for (const s of specs) {
        const [id, nt, et] = s.split(':');
        await this.addPane(Number(id), num(nt), num(et));
      }
      const d = /^(\d+),(\d+)$/.exec(q.get('diff') ?? '');
      const pa = d ? this.panes[Number(d[1])] : undefined;
      const pb = d ? this.panes[Number(d[2])] : undefined;
      if (pa && pb && pa.id !== pb.id) await this.openDiff(pa.id, pb.id);
      return specs.length > 0;
    },
    /** A trace changed (annotations, re-prune): reload its panes' views. */
    async reloadTrace(traceId: number): Promise<void> {
      delete this.traces[traceId];
      for (const p of this.panes) if (p.traceId === traceId) await this.loadPane(p.id);
    },
  },
});
