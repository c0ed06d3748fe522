/** Feature labels and dashboards of transcoder sets (shared by every graph of a set). */
import { defineStore } from 'pinia';
import { api } from '../api/inject.ts';
import type { FeatureInfo } from '../api/types.ts';

const key = (setId: number, layer: number, index: number) => `${setId}:${layer}:${index}`;

export const useFeatures = defineStore('features', {
  state: () => ({
    infos: {} as Record<string, FeatureInfo>,
    loading: {} as Record<string, boolean>,
    errors: {} as Record<string, string>,
  }),
  getters: {
    get: (s) => (setId: number, layer: number, index: number) => s.infos[key(setId, layer, index)] ?? null,
  },
  actions: {
    async fetch(setId: number, layer: number, index: number, force = false): Promise<FeatureInfo | null> {
      const k = key(setId, layer, index);
      if (!force && this.infos[k]) return this.infos[k];
      this.loading[k] = true;
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
  },
});
