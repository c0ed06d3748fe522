/**
 * Version 2: interventions on traced prompts (steering and ablating features), stored with
 * their trace: deleting the trace deletes them. The spec and the outcome are JSON the
 * repository writes; the outcome is bounded (top tokens, the largest feature changes).
 */
import type { Migration } from './index.ts';

export const migration002: Migration = {
  version: 2,
  name: 'interventions',
  sql: `
CREATE TABLE interventions (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  trace_id      INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  label         TEXT NOT NULL DEFAULT '',
  spec          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  progress      TEXT,
  error_code    TEXT,
  error_message TEXT,
  result        TEXT,
  created_at    INTEGER NOT NULL,
  started_at    INTEGER,
  finished_at   INTEGER
);
CREATE INDEX interventions_trace ON interventions(trace_id, id);
`,
};
