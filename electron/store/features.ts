/**
 * Per-feature data of a transcoder set, keyed by (transcoder set, layer, feature index) so it is
 * shared by every graph traced with that set: the label researchers give a feature and its
 * dashboard (the feature detail record of attribution.md §6, produced by the dashboards job).
 */
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import type { Db } from './database.ts';

export interface FeatureInfo {
  transcoderSetId: number;
  layer: number;
  index: number;
  label: string | null;
  labelUpdatedAt: number | null;
  dashboard: FeatureRecord | null;
  dashboardUpdatedAt: number | null;
}

interface Row {
  transcoder_set_id: number;
  layer: number;
  feature_index: number;
  label: string | null;
  label_updated_at: number | null;
  dashboard: string | null;
  dashboard_updated_at: number | null;
}

const toInfo = (r: Row): FeatureInfo => ({
  transcoderSetId: r.transcoder_set_id,
  layer: r.layer,
  index: r.feature_index,
  label: r.label,
  labelUpdatedAt: r.label_updated_at,
  dashboard: r.dashboard === null ? null : (JSON.parse(r.dashboard) as FeatureRecord),
  dashboardUpdatedAt: r.dashboard_updated_at,
});

/** Key of a feature in a label map. */
export const featureKey = (layer: number, index: number) => `${layer}:${index}`;

export class FeatureRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  get(setId: number, layer: number, index: number): FeatureInfo {
    const r = this.db
      .prepare('SELECT * FROM features WHERE transcoder_set_id = ? AND layer = ? AND feature_index = ?')
      .get(setId, layer, index) as Row | undefined;
    return r
      ? toInfo(r)
      : {
          transcoderSetId: setId,
          layer,
          index,
          label: null,
          labelUpdatedAt: null,
          dashboard: null,
          dashboardUpdatedAt: null,
        };
  }

  /** Sets (or, with null or '', clears) a feature's label. */
  setLabel(setId: number, layer: number, index: number, label: string | null): FeatureInfo {
    const value = label === '' ? null : label;
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO features (transcoder_set_id, layer, feature_index, label, label_updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (transcoder_set_id, layer, feature_index) DO UPDATE SET label = excluded.label,
           label_updated_at = excluded.label_updated_at`,
        )
        .run(setId, layer, index, value, this.now());
      this.prune(setId, layer, index);
    })();
    return this.get(setId, layer, index);
  }

  /** Stores dashboards (one transaction for the batch). */
  putDashboards(
    setId: number,
    records: ReadonlyArray<{ layer: number; index: number; dashboard: FeatureRecord }>,
  ): void {
    const stmt = this.db.prepare(
      `INSERT INTO features (transcoder_set_id, layer, feature_index, dashboard, dashboard_updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (transcoder_set_id, layer, feature_index) DO UPDATE SET dashboard = excluded.dashboard,
       dashboard_updated_at = excluded.dashboard_updated_at`,
    );
    const t = this.now();
    this.db.transaction(() => {
      for (const r of records) stmt.run(setId, r.layer, r.index, JSON.stringify(r.dashboard), t);
    })();
  }

  /** How many features of the set have a dashboard. */
  dashboardCount(setId: number): number {
    const r = this.db
      .prepare('SELECT COUNT(*) AS n FROM features WHERE transcoder_set_id = ? AND dashboard IS NOT NULL')
      .get(setId) as { n: number };
    return r.n;
  }

  /** Every label of the set: featureKey(layer, index) → label. */
  labels(setId: number): Map<string, string> {
    const rows = this.db
      .prepare(
        'SELECT layer, feature_index, label FROM features WHERE transcoder_set_id = ? AND label IS NOT NULL',
      )
      .all(setId) as Array<{ layer: number; feature_index: number; label: string }>;
    return new Map(rows.map((r) => [featureKey(r.layer, r.feature_index), r.label]));
  }

  /**
   * For the given features that have a dashboard: the tokens their top-activation examples were
   * selected for, and their top logits (read inside SQLite, so no dashboard is parsed here).
   */
  dashboardDigests(
    setId: number,
    features: ReadonlyArray<{ layer: number; index: number }>,
  ): Map<string, { topTokens: string[]; topLogits: string[] }> {
    const out = new Map<string, { topTokens: string[]; topLogits: string[] }>();
    const byLayer = new Map<number, number[]>();
    for (const f of features) {
      const l = byLayer.get(f.layer);
      if (l) l.push(f.index);
      else byLayer.set(f.layer, [f.index]);
    }
    const parse = (s: string | null): string[] => {
      if (!s) return [];
      const v: unknown = JSON.parse(s);
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    };
    for (const [layer, all] of byLayer) {
      const indices = [...new Set(all)];
      for (let k = 0; k < indices.length; k += 500) {
        const chunk = indices.slice(k, k + 500);
        const rows = this.db
          .prepare(
            `SELECT feature_index,
               (SELECT json_group_array(json_extract(e.value, '$.tokens[' || json_extract(e.value, '$.train_token_ind') || ']'))
                  FROM json_each(dashboard, '$.examples_quantiles[0].examples') e) AS top_tokens,
               json_extract(dashboard, '$.top_logits') AS top_logits
             FROM features WHERE transcoder_set_id = ? AND layer = ? AND dashboard IS NOT NULL
             AND feature_index IN (${chunk.map(() => '?').join(',')})`,
          )
          .all(setId, layer, ...chunk) as Array<{
          feature_index: number;
          top_tokens: string | null;
          top_logits: string | null;
        }>;
        for (const r of rows)
          out.set(featureKey(layer, r.feature_index), {
            topTokens: parse(r.top_tokens),
            topLogits: parse(r.top_logits),
          });
      }
    }
    return out;
  }

  /** Labelled features of the set whose label contains `query` (case-insensitive). */
  search(setId: number, query: string, limit = 100): FeatureInfo[] {
    const pattern = `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return (
      this.db
        .prepare(
          `SELECT * FROM features WHERE transcoder_set_id = ? AND label IS NOT NULL AND label LIKE ? ESCAPE '\\'
           ORDER BY layer, feature_index LIMIT ?`,
        )
        .all(setId, pattern, limit) as Row[]
    ).map(toInfo);
  }

  private prune(setId: number, layer: number, index: number): void {
    this.db
      .prepare(
        `DELETE FROM features WHERE transcoder_set_id = ? AND layer = ? AND feature_index = ?
         AND label IS NULL AND dashboard IS NULL`,
      )
      .run(setId, layer, index);
  }
}
