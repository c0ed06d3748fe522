/**
 * Per-trace annotations (pins, supernodes, subgraph layout, labels, notes), persisted through
 * the API on every change. Feature labels are shared by every graph of a transcoder set and go
 * through features.setLabel instead (see the features store).
 */
import { defineStore } from 'pinia';
import { api } from '../api/inject.ts';
import type { Annotations, Supernode } from '../api/types.ts';

type Changes = Partial<Pick<Annotations, 'pinned' | 'supernodes' | 'layout' | 'labels' | 'notes'>>;

export const useAnnotations = defineStore('annotations', {
  state: () => ({
    byTrace: {} as Record<number, Annotations>,
    saving: false,
  }),
  getters: {
    pinnedSet: (s) => (traceId: number) => new Set(s.byTrace[traceId]?.pinned ?? []),
    of:
      (s) =>
      (traceId: number): Annotations | null =>
        s.byTrace[traceId] ?? null,
  },
  actions: {
    async load(traceId: number): Promise<Annotations> {
      const a = await api().call('annotations.get', { traceId });
      this.byTrace[traceId] = a;
      return a;
    },
    async ensure(traceId: number): Promise<Annotations> {
      return this.byTrace[traceId] ?? this.load(traceId);
    },
    async update(traceId: number, changes: Changes): Promise<Annotations> {
      this.saving = true;
      try {
        // Always send `pinned`: the service forwards an absent field as undefined and the store
        // then writes NULL into a NOT NULL column (reported; remove once fixed there).
        const pinned = changes.pinned ?? (await this.ensure(traceId)).pinned;
        const a = await api().call('annotations.update', { traceId, ...changes, pinned });
        this.byTrace[traceId] = a;
        return a;
      } finally {
        this.saving = false;
      }
    },
    async togglePin(traceId: number, nodeId: string): Promise<void> {
      const a = await this.ensure(traceId);
      const pinned = a.pinned.includes(nodeId) ? a.pinned.filter((p) => p !== nodeId) : [...a.pinned, nodeId];
      await this.update(traceId, { pinned });
    },
    async setPinned(traceId: number, pinned: string[]): Promise<void> {
      await this.update(traceId, { pinned: [...new Set(pinned)] });
    },
    /** Groups nodes under one supernode (removing them from any other group). */
    async group(traceId: number, nodeIds: string[], label: string): Promise<number> {
      const a = await this.ensure(traceId);
      const members = new Set(nodeIds);
      const kept: Supernode[] = a.supernodes
        .map((s) => ({ label: s.label, nodeIds: s.nodeIds.filter((n) => !members.has(n)) }))
        .filter((s) => s.nodeIds.length > 0);
      kept.push({ label, nodeIds: [...members] });
      await this.update(traceId, { supernodes: kept, layout: dropSupernodeLayout(a.layout) });
      return kept.length - 1;
    },
    async renameGroup(traceId: number, index: number, label: string): Promise<void> {
      const a = await this.ensure(traceId);
      const supernodes = a.supernodes.map((s, i) => (i === index ? { ...s, label } : s));
      await this.update(traceId, { supernodes });
    },
    async ungroup(traceId: number, index: number): Promise<void> {
      const a = await this.ensure(traceId);
      await this.update(traceId, {
        supernodes: a.supernodes.filter((_, i) => i !== index),
        layout: dropSupernodeLayout(a.layout),
      });
    },
    async setNodeLabel(traceId: number, nodeId: string, label: string): Promise<void> {
      const a = await this.ensure(traceId);
      const labels = { ...a.labels };
      if (label) labels[nodeId] = label;
      else delete labels[nodeId];
      await this.update(traceId, { labels });
    },
    async setNote(traceId: number, nodeId: string, note: string): Promise<void> {
      const a = await this.ensure(traceId);
      const notes = { ...a.notes };
      if (note) notes[nodeId] = note;
      else delete notes[nodeId];
      await this.update(traceId, { notes });
    },
    async moveInSubgraph(traceId: number, key: string, pos: { x: number; y: number }): Promise<void> {
      const a = await this.ensure(traceId);
      await this.update(traceId, { layout: { ...a.layout, [key]: pos } });
    },
    async resetSubgraphLayout(traceId: number): Promise<void> {
      await this.update(traceId, { layout: {} });
    },
  },
});

/** Supernode layout keys are indices, which shift when groups change: drop them. */
function dropSupernodeLayout(layout: Annotations['layout']): Annotations['layout'] {
  return Object.fromEntries(Object.entries(layout).filter(([k]) => !k.startsWith('supernode:')));
}
