/**
 * Feature labels and dashboards of transcoder sets (shared by every graph of a set), and the
 * sets' dashboards jobs: status, progress, start and cancel. Cards update live: when a set's
 * job ends (the `dashboards.updated` event) every card of that set already fetched is fetched
 * again, so an open card fills in without a reload.
 */
import { defineStore } from 'pinia';
import { api } from '../api/inject.ts';
import type { DashboardsStatus, FeatureInfo } from '../api/types.ts';

const key = (setId: number, layer: number, index: number) => `${setId}:${layer}:${index}`;

export const useFeatures = defineStore('features', {
  state: () => ({
    infos: {} as Record<string, FeatureInfo>,
    loading: {} as Record<string, boolean>,
    errors: {} as Record<string, string>,
    /** Dashboards status per transcoder set id. */
    dashboards: {} as Record<number, DashboardsStatus>,
    /** Sets whose automatic first computation was already requested (once per session). */
    autoRequested: {} as Record<number, boolean>,
    subscribed: false,
  }),
  getters: {
    get: (s) => (setId: number, layer: number, index: number) => s.infos[key(setId, layer, index)] ?? null,
    /** Whether the set has a queued or running dashboards job. */
    computing: (s) => (setId: number) => {
      const st = s.dashboards[setId]?.job?.state;
      return st === 'queued' || st === 'running';
    },
  },
  actions: {
    /** Follows the backend's dashboards events (once per client). */
    subscribe(): void {
      if (this.subscribed) return;
      this.subscribed = true;
      api().on('dashboards.updated', (s) => this.applyStatus(s));
      api().on('library.changed', ({ entity, id }) => {
        // dashboards stored by another client (putDashboards, the CLI through a shared server)
        if (entity === 'feature' && typeof id === 'string' && id.endsWith(':*'))
          void this.refetchSet(Number(id.slice(0, -2)));
      });
    },
    applyStatus(s: DashboardsStatus): void {
      const before = this.dashboards[s.transcoderSetId];
      this.dashboards[s.transcoderSetId] = s;
      const ended = s.job?.state === 'done' && (before?.job?.state !== 'done' || before.job.id !== s.job.id);
      if (ended) void this.refetchSet(s.transcoderSetId);
    },
    /** Fetches again every feature of the set this client has loaded (cards re-render). */
    async refetchSet(setId: number): Promise<void> {
      const prefix = `${setId}:`;
      const keys = Object.keys(this.infos).filter((k) => k.startsWith(prefix));
      await Promise.all(
        keys.map((k) => {
          const [, layer, index] = k.split(':').map(Number);
          return this.fetch(setId, layer, index, true);
        }),
      );
    },
    async fetch(setId: number, layer: number, index: number, force = false): Promise<FeatureInfo | null> {
      this.subscribe();
      const k = key(setId, layer, index);
      if (!force && this.infos[k]) return this.infos[k];
      // a refetch keeps the card on screen (no "Loading…" flash)
      if (!this.infos[k]) this.loading[k] = true;
      try {
        const info = await api().call('features.get', { transcoderSetId: setId, layer, index });
        this.infos[k] = info;
        delete this.errors[k];
        return info;
      } catch (e) {
        this.errors[k] = e instanceof Error ? e.message : String(e);
        return null;
      } finally {
        this.loading[k] = false;
      }
    },
    async setLabel(setId: number, layer: number, index: number, label: string): Promise<void> {
      const info = await api().call('features.setLabel', { transcoderSetId: setId, layer, index, label });
      this.infos[key(setId, layer, index)] = info;
    },
    async status(setId: number): Promise<DashboardsStatus> {
      this.subscribe();
      const s = await api().call('features.dashboardsStatus', { transcoderSetId: setId });
      this.applyStatus(s);
      return s;
    },
    /** Queues the set's dashboards (the running job if there is one). */
    async compute(
      setId: number,
      opts: { corpus?: string; maxTokens?: number } = {},
    ): Promise<DashboardsStatus> {
      this.subscribe();
      const s = await api().call('features.computeDashboards', { transcoderSetId: setId, ...opts });
      this.applyStatus(s);
      return s;
    },
    async cancel(setId: number): Promise<DashboardsStatus> {
      const s = await api().call('features.cancelDashboards', { transcoderSetId: setId });
      this.applyStatus(s);
      return s;
    },
    /**
     * First use of a set whose model ships a corpus (the embedded demo): computes its dashboards
     * without being asked, once per session, when none are stored and no job ran before (a
     * cancelled or failed one is left for the user to start again).
     */
    async autoCompute(setId: number): Promise<void> {
      if (this.autoRequested[setId]) return;
      this.autoRequested[setId] = true;
      const s = await this.status(setId);
      if (s.stored > 0 || s.job !== null || s.defaultCorpus === null) return;
      await api()
        .call('features.computeDashboards', { transcoderSetId: setId, ifMissing: true })
        .then((r) => this.applyStatus(r));
    },
  },
});
