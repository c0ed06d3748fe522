/**
 * Version 1: the whole library. Conventions: ids are INTEGER PRIMARY KEY (AUTOINCREMENT where a
 * UI may hold them: an id is never reused for another project, model or trace); times are Unix
 * milliseconds; JSON columns hold validated JSON written by the repositories; typed arrays are
 * little-endian BLOBs (int32 / float32) of exactly the length their count column says.
 */
import type { Migration } from './index.ts';

export const migration001: Migration = {
  version: 1,
  name: 'initial',
  sql: `
CREATE TABLE projects (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 200),
  description TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

-- A transcoder set, identified by the content of its files: labels and dashboards hang off it,
-- so every graph traced with the same set (wherever its folder lives) shares them.
CREATE TABLE transcoder_sets (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  content_hash TEXT NOT NULL UNIQUE,
  dir          TEXT NOT NULL,
  kind         TEXT NOT NULL,
  n_layers     INTEGER NOT NULL,
  d_model      INTEGER NOT NULL,
  d_transcoder INTEGER NOT NULL,
  created_at   INTEGER NOT NULL
);

-- A registered model: a checkpoint folder + a transcoder folder, with the validation verdict.
CREATE TABLE models (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  name              TEXT NOT NULL,
  checkpoint_dir    TEXT NOT NULL,
  transcoder_dir    TEXT NOT NULL,
  transcoder_set_id INTEGER REFERENCES transcoder_sets(id),
  content_hash      TEXT,
  family            TEXT,
  n_layers          INTEGER,
  valid             INTEGER NOT NULL CHECK (valid IN (0, 1)),
  validation        TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  validated_at      INTEGER NOT NULL,
  UNIQUE (checkpoint_dir, transcoder_dir)
);

CREATE TABLE traces (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id        INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  model_id          INTEGER REFERENCES models(id) ON DELETE SET NULL,
  transcoder_set_id INTEGER REFERENCES transcoder_sets(id),
  source            TEXT NOT NULL CHECK (source IN ('trace', 'import')),
  prompt            TEXT NOT NULL,
  token_ids         TEXT,
  settings          TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  progress          TEXT,
  timings           TEXT,
  error_code        TEXT,
  error_message     TEXT,
  notes             TEXT NOT NULL DEFAULT '',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  started_at        INTEGER,
  finished_at       INTEGER,
  deleted_at        INTEGER
);
CREATE INDEX traces_project ON traces(project_id, created_at);
CREATE INDEX traces_model ON traces(model_id);
CREATE INDEX traces_status ON traces(status);

CREATE TABLE trace_tags (
  trace_id INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  tag      TEXT NOT NULL,
  PRIMARY KEY (trace_id, tag)
) WITHOUT ROWID;
CREATE INDEX trace_tags_tag ON trace_tags(tag);

-- The unpruned graph: node tables here, the adjacency (CSR) in a sidecar file under
-- <data>/graphs/ that this row owns (written and fsynced before the row is committed).
CREATE TABLE graphs (
  trace_id            INTEGER PRIMARY KEY REFERENCES traces(id) ON DELETE CASCADE,
  n_layers            INTEGER NOT NULL,
  n_positions         INTEGER NOT NULL,
  n_features          INTEGER NOT NULL,
  n_logits            INTEGER NOT NULL,
  n_nodes             INTEGER NOT NULL,
  nnz                 INTEGER NOT NULL,
  prompt_token_ids    BLOB NOT NULL,
  prompt_tokens       TEXT NOT NULL,
  feature_layer       BLOB NOT NULL,
  feature_position    BLOB NOT NULL,
  feature_index       BLOB NOT NULL,
  feature_activation  BLOB NOT NULL,
  logit_token_ids     BLOB NOT NULL,
  logit_probabilities BLOB NOT NULL,
  logit_tokens        TEXT NOT NULL,
  sidecar             TEXT NOT NULL UNIQUE,
  sidecar_bytes       INTEGER NOT NULL,
  adjacency_sha256    TEXT NOT NULL,
  created_at          INTEGER NOT NULL
);

-- Which features appear in which graph (search by feature).
CREATE TABLE trace_features (
  trace_id      INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
  layer         INTEGER NOT NULL,
  feature_index INTEGER NOT NULL,
  PRIMARY KEY (layer, feature_index, trace_id)
) WITHOUT ROWID;
CREATE INDEX trace_features_trace ON trace_features(trace_id);

-- A pruned view: kept nodes (raw indices, ascending) and kept edges, per threshold pair and
-- pinned set. Re-pruning adds rows; the least recently used non-default ones are evicted.
CREATE TABLE pruned_views (
  id                 INTEGER PRIMARY KEY,
  trace_id           INTEGER NOT NULL REFERENCES graphs(trace_id) ON DELETE CASCADE,
  node_threshold     REAL NOT NULL,
  edge_threshold     REAL NOT NULL,
  pinned             TEXT NOT NULL DEFAULT '',
  is_default         INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
  n_nodes            INTEGER NOT NULL,
  n_edges            INTEGER NOT NULL,
  kept_nodes         BLOB NOT NULL,
  node_influence     BLOB NOT NULL,
  edge_target        BLOB NOT NULL,
  edge_source        BLOB NOT NULL,
  edge_weight        BLOB NOT NULL,
  replacement_score  REAL,
  completeness_score REAL,
  created_at         INTEGER NOT NULL,
  last_used_at       INTEGER NOT NULL,
  UNIQUE (trace_id, node_threshold, edge_threshold, pinned)
);

-- Per-feature data of a transcoder set: the label researchers give it and its dashboard
-- (the feature detail record of attribution.md §6, as JSON).
CREATE TABLE features (
  transcoder_set_id    INTEGER NOT NULL REFERENCES transcoder_sets(id) ON DELETE CASCADE,
  layer                INTEGER NOT NULL,
  feature_index        INTEGER NOT NULL,
  label                TEXT,
  label_updated_at     INTEGER,
  dashboard            TEXT,
  dashboard_updated_at INTEGER,
  PRIMARY KEY (transcoder_set_id, layer, feature_index)
) WITHOUT ROWID;

-- Per-trace annotations, keyed by graph JSON node ids.
CREATE TABLE annotations (
  trace_id    INTEGER PRIMARY KEY REFERENCES traces(id) ON DELETE CASCADE,
  pinned      TEXT NOT NULL DEFAULT '[]',
  supernodes  TEXT NOT NULL DEFAULT '[]',
  layout      TEXT NOT NULL DEFAULT '{}',
  node_labels TEXT NOT NULL DEFAULT '{}',
  node_notes  TEXT NOT NULL DEFAULT '{}',
  updated_at  INTEGER NOT NULL
);

-- The persisted job queue (electron/store/jobs.ts, run by electron/api/queue.ts): a trace survives a
-- restart of the app while queued; a job a dead process left running becomes 'interrupted'.
CREATE TABLE jobs (
  id          INTEGER PRIMARY KEY,
  kind        TEXT NOT NULL,
  device      TEXT NOT NULL CHECK (device IN ('cpu', 'gpu')),
  params      TEXT NOT NULL,
  priority    INTEGER NOT NULL DEFAULT 0,
  trace_id    INTEGER REFERENCES traces(id) ON DELETE CASCADE,
  state       TEXT NOT NULL
              CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  resume      INTEGER NOT NULL DEFAULT 0 CHECK (resume IN (0, 1)),
  progress    TEXT,
  result      TEXT,
  error       TEXT,
  created_at  INTEGER NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER
);
CREATE INDEX jobs_queue ON jobs(state, device, priority DESC, id);
CREATE INDEX jobs_trace ON jobs(trace_id);

-- Sidecar files being written (registered before the file exists, removed in the transaction
-- that commits the graph). A row whose process is gone marks an orphan to delete.
CREATE TABLE pending_files (
  file       TEXT PRIMARY KEY,
  pid        INTEGER NOT NULL,
  host       TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
`,
};
