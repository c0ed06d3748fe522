/**
 * Interventions on the open trace: the draft (edited features, loop and options), the trace's
 * interventions (interventions.list, kept live by the intervention.* events), start / cancel /
 * delete, the result shown, and whether the graph highlights it. The highlight itself is
 * computed from the shown result by graph/intervention.ts and drawn by the panes.
 */
import { defineStore } from 'pinia';
import { api } from '../api/inject.ts';
import type { GraphView, InterventionRecord, InterventionStatus, TraceProgress } from '../api/types.ts';
import {
  type DraftOptions,
  type DraftRow,
  defaultValue,
  draftProblems,
  draftRows,
  duplicateRow,
  interventionInput,
  mergeRows,
  type SkippedNode,
} from '../graph/intervention.ts';

export interface InterventionDraft {
  traceId: number;
  /** Where the rows came from ("3 pinned nodes", "supernode “Texas”", …). */
  source: string;
  rows: DraftRow[];
  skipped: SkippedNode[];
  options: DraftOptions;
  /** Prompt tokens of the trace (positions for the position pickers; index 0 is BOS). */
  promptTokens: string[];
}

export const DEFAULT_OPTIONS: DraftOptions = {
  loop: 'closed',
  freezeAttention: false,
  generate: 0,
  top: 10,
  label: '',
};

const TERMINAL: ReadonlySet<InterventionStatus> = new Set(['done', 'failed', 'cancelled']);
export const isActive = (r: InterventionRecord) => r.status === 'queued' || r.status === 'running';

/**
 * Watchdog for lost events: while an intervention is queued or running and no event about it
 * arrived for STALE_MS (a reconnect, a transport that drops them), its record is fetched.
 */
const STALE_MS = 2000;
const lastEventAt = new Map<number, number>();
let watchdog: ReturnType<typeof setInterval> | null = null;

export const useInterventions = defineStore('interventions', {
  state: () => ({
    /** The panel is open. */
    open: false,
    draft: null as InterventionDraft | null,
    /** Options carry over from one draft to the next. */
    lastOptions: { ...DEFAULT_OPTIONS } as DraftOptions,
    /** Per trace, newest first; absent until loaded. */
    lists: {} as Record<number, InterventionRecord[]>,
    progress: {} as Record<number, TraceProgress>,
    /** The intervention whose result is shown (panel table and graph highlight). */
    shownId: null as number | null,
    /** Whether the graph highlights the shown result. */
    highlight: true,
    loading: false,
    loadError: null as string | null,
    starting: false,
    startError: null as string | null,
    subscribed: false,
  }),
  getters: {
    listOf:
      (s) =>
      (traceId: number): InterventionRecord[] =>
        s.lists[traceId] ?? [],
    shown(s): InterventionRecord | null {
      if (s.shownId === null) return null;
      for (const list of Object.values(s.lists)) {
        const r = list.find((x) => x.id === s.shownId);
        if (r) return r;
      }
      return null;
    },
    /** The finished result a trace's panes highlight, if any. */
    highlightFor() {
      return (traceId: number): InterventionRecord | null => {
        const r = this.shown;
        return this.highlight && r && r.traceId === traceId && r.status === 'done' && r.result ? r : null;
      };
    },
    problems(s) {
      const d = s.draft;
      if (!d) return { rows: {} as Record<string, string>, general: [] as string[] };
      return draftProblems(d.rows, d.options, d.promptTokens.length);
    },
  },
  actions: {
    /** Follows the backend's intervention events (once per client). */
    subscribe(): void {
      if (this.subscribed) return;
      this.subscribed = true;
      const client = api();
      client.on('intervention.progress', ({ interventionId, progress }) => {
        lastEventAt.set(interventionId, Date.now());
        this.progress = { ...this.progress, [interventionId]: progress };
      });
      client.on('intervention.updated', ({ intervention, deleted }) => {
        lastEventAt.set(intervention.id, Date.now());
        if (deleted) this.forget(intervention.id, intervention.traceId);
        else this.upsert(intervention);
      });
    },
    /** Inserts or replaces a record (never going back from a finished state to an earlier one). */
    upsert(r: InterventionRecord): void {
      const list = this.lists[r.traceId];
      if (!list) return;
      const i = list.findIndex((x) => x.id === r.id);
      if (i >= 0) {
        if (TERMINAL.has(list[i].status) && !TERMINAL.has(r.status)) return;
        list.splice(i, 1, r);
      } else {
        list.push(r);
        list.sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
      }
      if (r.status !== 'running' && this.progress[r.id]) {
        const { [r.id]: _, ...rest } = this.progress;
        this.progress = rest;
      }
    },
    /** Starts the watchdog (see STALE_MS) while any listed intervention is queued or running. */
    watch(): void {
      if (watchdog !== null) return;
      watchdog = setInterval(() => {
        const active = Object.values(this.lists).flatMap((l) => l.filter(isActive));
        if (active.length === 0) {
          if (watchdog !== null) clearInterval(watchdog);
          watchdog = null;
          return;
        }
        const now = Date.now();
        for (const r of active) {
          if (now - (lastEventAt.get(r.id) ?? 0) < STALE_MS) continue;
          lastEventAt.set(r.id, now);
          api()
            .call('interventions.get', { id: r.id })
            .then((fresh) => {
              if (fresh.status === 'running' && fresh.progress)
                this.progress = { ...this.progress, [fresh.id]: fresh.progress };
              this.upsert(fresh);
            })
            .catch(() => {
              // Gone (deleted) or the connection is down: the next event or reload says.
            });
        }
      }, STALE_MS / 2);
    },
    forget(id: number, traceId: number): void {
      const list = this.lists[traceId];
      if (list) this.lists[traceId] = list.filter((x) => x.id !== id);
      if (this.shownId === id) this.shownId = null;
    },
    async load(traceId: number): Promise<void> {
      this.loading = true;
      try {
        const list = await api().call('interventions.list', { traceId });
        this.lists[traceId] = list;
        this.loadError = null;
        for (const r of list) if (r.status === 'running' && r.progress) this.progress[r.id] = r.progress;
        if (list.some(isActive)) this.watch();
      } catch (e) {
        this.loadError = e instanceof Error ? e.message : String(e);
      } finally {
        this.loading = false;
      }
    },
    /**
     * Opens the panel with a new draft: one row per feature node of `nodeIds` (the others are
     * skipped, with the reason shown). Loads the trace's interventions.
     */
    openDraft(
      traceId: number,
      nodeIds: readonly string[],
      view: Pick<GraphView, 'nodes' | 'nLayers' | 'promptTokens'>,
      source: string,
    ): void {
      const { rows, skipped } = draftRows(nodeIds, view);
      this.draft = {
        traceId,
        source,
        rows,
        skipped,
        options: { ...this.lastOptions, label: '' },
        promptTokens: [...view.promptTokens],
      };
      this.startError = null;
      this.open = true;
      if (this.shown && this.shown.traceId !== traceId) this.shownId = null;
      void this.load(traceId);
    },
    /** Adds nodes to the open draft of the same trace (or opens a new one). */
    addToDraft(
      traceId: number,
      nodeIds: readonly string[],
      view: Pick<GraphView, 'nodes' | 'nLayers' | 'promptTokens'>,
      source: string,
    ): void {
      const d = this.draft;
      if (!d || d.traceId !== traceId || !this.open) {
        this.openDraft(traceId, nodeIds, view, source);
        return;
      }
      const { rows, skipped } = draftRows(nodeIds, view);
      d.rows = mergeRows(d.rows, rows);
      const known = new Set(d.skipped.map((s) => s.id));
      d.skipped = [...d.skipped, ...skipped.filter((s) => !known.has(s.id))];
    },
    setMode(key: string, mode: DraftRow['mode']): void {
      const row = this.draft?.rows.find((r) => r.key === key);
      if (!row) return;
      row.value = defaultValue(row, mode);
      row.mode = mode;
    },
    removeRow(key: string): void {
      if (this.draft) this.draft.rows = this.draft.rows.filter((r) => r.key !== key);
    },
    duplicateRow(key: string): void {
      const d = this.draft;
      if (d) d.rows = duplicateRow(d.rows, key, d.promptTokens.length);
    },
    dismissSkipped(): void {
      if (this.draft) this.draft.skipped = [];
    },
    async start(): Promise<InterventionRecord | null> {
      const d = this.draft;
      if (!d || this.starting) return null;
      const p = this.problems;
      if (p.general.length || Object.keys(p.rows).length) {
        this.startError = p.general[0] ?? 'Fix the marked rows first.';
        return null;
      }
      this.starting = true;
      this.startError = null;
      this.lastOptions = { ...d.options, label: '' };
      try {
        const rec = await api().call('interventions.start', interventionInput(d.traceId, d.rows, d.options));
        if (!this.lists[d.traceId]) this.lists[d.traceId] = [];
        lastEventAt.set(rec.id, Date.now());
        this.upsert(rec);
        this.watch();
        this.shownId = rec.id;
        this.highlight = true;
        return rec;
      } catch (e) {
        this.startError = e instanceof Error ? e.message : String(e);
        return null;
      } finally {
        this.starting = false;
      }
    },
    async cancel(id: number): Promise<void> {
      this.upsert(await api().call('interventions.cancel', { id }));
    },
    async remove(id: number): Promise<void> {
      const r = await api().call('interventions.delete', { id });
      this.forget(r.id, r.traceId);
    },
    show(id: number | null): void {
      this.shownId = id;
      if (id !== null) this.highlight = true;
    },
    /** Re-opens a past intervention's edits as the draft (to vary them). */
    editAgain(r: InterventionRecord, view: Pick<GraphView, 'nodes' | 'nLayers' | 'promptTokens'>): void {
      const ids = r.spec.edits.map((e) => `${e.layer}_${e.feature}_${e.position}`);
      this.openDraft(r.traceId, ids, view, `intervention #${r.id}`);
      const d = this.draft;
      if (!d) return;
      for (const row of d.rows) {
        const e = r.spec.edits.find(
          (x) => x.layer === row.layer && x.feature === row.feature && x.position === row.position,
        );
        if (!e) continue;
        row.mode = e.mode;
        row.value = e.mode === 'ablate' ? null : (e.value ?? null);
      }
      d.options = {
        loop: r.spec.loop,
        freezeAttention: r.spec.freezeAttention,
        generate: r.spec.generate,
        top: r.spec.top,
        label: '',
      };
    },
    close(): void {
      this.open = false;
    },
  },
});
