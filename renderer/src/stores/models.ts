/**
 * Registered models and transcoder sets. On first run (no model registered yet) the embedded
 * demo model is registered through the API when the server can find it.
 */
import { defineStore } from 'pinia';
import { api, errorMessage } from '../api/inject.ts';
import type { ModelRecord, TranscoderSetRecord } from '../api/types.ts';

/** The embedded demo (relative to the server's working directory: the repository or app root). */
export const DEMO_MODEL = {
  name: 'gemma2-demo',
  checkpointDir: 'resources/models/gemma2-demo',
  transcoderDirs: [
    'resources/models/gemma2-demo/transcoders/clt',
    'resources/models/gemma2-demo/transcoders/plt',
  ],
  prompt: 'The capital of state containing Dallas is',
};

export const useModels = defineStore('models', {
  state: () => ({
    models: [] as ModelRecord[],
    sets: [] as TranscoderSetRecord[],
    loaded: false,
    error: null as string | null,
    registering: false,
  }),
  getters: {
    valid: (s) => s.models.filter((m) => m.valid),
    /** The model the trace form preselects: the demo when registered, else the newest valid one. */
    preferred(): ModelRecord | null {
      const v = this.valid;
      return v.find((m) => m.name.startsWith(DEMO_MODEL.name)) ?? v[v.length - 1] ?? null;
    },
  },
  actions: {
    async refresh(): Promise<void> {
      try {
        const [models, sets] = await Promise.all([
          api().call('models.list', {}),
          api().call('models.transcoderSets', {}),
        ]);
        this.models = models;
        this.sets = sets;
        this.loaded = true;
        this.error = null;
      } catch (e) {
        this.error = errorMessage(e);
      }
    },
    async register(checkpointDir: string, transcoderDir: string, name?: string): Promise<ModelRecord> {
      this.registering = true;
      try {
        const m = await api().call('models.register', {
          checkpointDir,
          transcoderDir,
          name: name || undefined,
        });
        await this.refresh();
        return m;
      } finally {
        this.registering = false;
      }
    },
    async remove(id: number): Promise<void> {
      await api().call('models.delete', { id });
      await this.refresh();
    },
    /**
     * First run: register the demo model (one record per transcoder set). Registrations that
     * fail validation (the demo is not installed) are removed again, so nothing half-valid
     * stays in the library.
     */
    async ensureDemo(): Promise<void> {
      if (!this.loaded) await this.refresh();
      if (this.models.length > 0) return;
      for (const dir of DEMO_MODEL.transcoderDirs) {
        const kind = dir.split('/').pop();
        try {
          const m = await api().call('models.register', {
            checkpointDir: DEMO_MODEL.checkpointDir,
            transcoderDir: dir,
            name: `${DEMO_MODEL.name} (${kind})`,
          });
          if (!m.valid) await api().call('models.delete', { id: m.id });
        } catch {
          // The server cannot read the folders: the demo is not installed.
        }
      }
      await this.refresh();
    },
  },
});

export { errorMessage };
