/** Short messages (errors, confirmations with an undo action). */
import { defineStore } from 'pinia';

export interface Toast {
  id: number;
  kind: 'info' | 'error';
  text: string;
  action?: { label: string; run: () => void };
}

let nextId = 1;

export const useToasts = defineStore('toasts', {
  state: () => ({ items: [] as Toast[] }),
  actions: {
    push(kind: Toast['kind'], text: string, action?: Toast['action'], ttlMs = 6000): number {
      const id = nextId++;
      this.items.push({ id, kind, text, action });
      if (ttlMs > 0) setTimeout(() => this.dismiss(id), ttlMs);
      return id;
    },
    error(text: string): number {
      return this.push('error', text, undefined, 10_000);
    },
    dismiss(id: number): void {
      this.items = this.items.filter((t) => t.id !== id);
    },
  },
});
