/**
 * Requests between parts of the shell that do not own each other (desktop menu commands:
 * export, new project, show a model).
 */
import { defineStore } from 'pinia';
import type { NodeSizeBy } from '../graph/style.ts';

export const useUi = defineStore('ui', {
  state: () => ({
    modelsOpen: false,
    highlightModelId: null as number | null,
    exportRequest: { kind: 'png' as 'png' | 'json', seq: 0 },
    newProjectSeq: 0,
    /** What feature glyph sizes show, in every pane. */
    nodeSizeBy: 'influence' as NodeSizeBy,
  }),
  actions: {
    requestExport(kind: 'png' | 'json'): void {
      this.exportRequest = { kind, seq: this.exportRequest.seq + 1 };
    },
    showModel(id: number): void {
      this.modelsOpen = true;
      this.highlightModelId = id;
    },
  },
});
