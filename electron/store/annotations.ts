/** Per-trace annotations (pins, supernodes, subgraph layout, node labels and notes), keyed by graph JSON node ids. */
import type { Db } from './database.ts';
import type { Annotations } from './types.ts';

export type AnnotationChanges = Partial<Omit<Annotations, 'traceId' | 'updatedAt'>>;

interface Row {
  trace_id: number;
  pinned: string;
  supernodes: string;
  layout: string;
  node_labels: string;
  node_notes: string;
  updated_at: number;
}

export const emptyAnnotations = (traceId: number): Annotations => ({
  traceId,
  pinned: [],
  supernodes: [],
  layout: {},
  labels: {},
  notes: {},
  updatedAt: null,
});

export class AnnotationRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  get(traceId: number): Annotations {
    const r = this.db.prepare('SELECT * FROM annotations WHERE trace_id = ?').get(traceId) as Row | undefined;
    if (!r) return emptyAnnotations(traceId);
    return {
      traceId,
      pinned: JSON.parse(r.pinned),
      supernodes: JSON.parse(r.supernodes),
      layout: JSON.parse(r.layout),
      labels: JSON.parse(r.node_labels),
      notes: JSON.parse(r.node_notes),
      updatedAt: r.updated_at,
    };
  }

  /** Replaces the given fields (others unchanged). */
  update(traceId: number, changes: AnnotationChanges): Annotations {
    return this.db
      .transaction(() => {
        // Fields given as undefined are "unchanged", not "cleared" (a plain spread would null them).
        const given = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
        const a = { ...this.get(traceId), ...given } as Annotations;
        this.db
          .prepare(
            `INSERT INTO annotations (trace_id, pinned, supernodes, layout, node_labels, node_notes, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET pinned = excluded.pinned,
             supernodes = excluded.supernodes, layout = excluded.layout, node_labels = excluded.node_labels,
             node_notes = excluded.node_notes, updated_at = excluded.updated_at`,
          )
          .run(
            traceId,
            JSON.stringify(a.pinned),
            JSON.stringify(a.supernodes),
            JSON.stringify(a.layout),
            JSON.stringify(a.labels),
            JSON.stringify(a.notes),
            this.now(),
          );
        return this.get(traceId);
      })
      .immediate();
  }
}
