/**
 * Graphs: the unpruned graph of a trace (node tables in the database, the adjacency in a
 * sidecar file the row owns) and its pruned views, one per (node threshold, edge threshold,
 * pinned set).
 *
 * Sidecar life cycle (crash-safe at every step):
 *   1. `pending_files` row (committed) naming the file, this process's pid and host;
 *   2. file written to `<name>.tmp`, fsynced, renamed to `<name>`, folder fsynced;
 *   3. the caller's transaction inserts the `graphs` row and deletes the pending row.
 * A crash before 3 commits leaves a file that no graph row references and whose pending row
 * names a dead process: `removeOrphans` (run when the store opens) deletes it. Deleting a trace
 * commits first and unlinks the file afterwards; a crash in between leaves an orphan, removed
 * the same way.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AttributionNodes, RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import { blob, float32s, int32s } from './blobs.ts';
import type { Db } from './database.ts';
import { notFound, StoreError } from './errors.ts';
import {
  adjacencyHash,
  type CsrAdjacency,
  csrToDense,
  GRAPH_FILE_EXT,
  readGraphAdjacency,
  writeGraphFile,
} from './graph-file.ts';
import type { ViewSummary } from './types.ts';

export interface WrittenSidecar {
  /** File name under the graph folder. */
  file: string;
  bytes: number;
  sha256: string;
  nnz: number;
}

export interface StoredView {
  summary: ViewSummary;
  pruned: PrunedGraph;
}

/** Pruned views kept per trace besides the default one (least recently used evicted). */
export const MAX_VIEWS_PER_TRACE = 24;

/** A pinned set as stored: ascending raw node indices, comma-separated ('' for none). */
export function pinnedKey(pinned: readonly number[] | undefined): string {
  if (!pinned || pinned.length === 0) return '';
  return [...new Set(pinned)].sort((a, b) => a - b).join(',');
}

/** The raw node indices a `pinnedKey` names. */
export function pinnedOfKey(key: string): number[] {
  return key === '' ? [] : key.split(',').map(Number);
}

interface GraphRow {
  trace_id: number;
  n_layers: number;
  n_positions: number;
  n_features: number;
  n_logits: number;
  n_nodes: number;
  nnz: number;
  prompt_token_ids: Buffer;
  prompt_tokens: string;
  feature_layer: Buffer;
  feature_position: Buffer;
  feature_index: Buffer;
  feature_activation: Buffer;
  logit_token_ids: Buffer;
  logit_probabilities: Buffer;
  logit_tokens: string;
  sidecar: string;
  sidecar_bytes: number;
  adjacency_sha256: string;
}

interface ViewRow {
  id: number;
  node_threshold: number;
  edge_threshold: number;
  pinned: string;
  is_default: number;
  n_nodes: number;
  n_edges: number;
  replacement_score: number | null;
  completeness_score: number | null;
  created_at: number;
  last_used_at: number;
  kept_nodes?: Buffer;
  node_influence?: Buffer;
  edge_target?: Buffer;
  edge_source?: Buffer;
  edge_weight?: Buffer;
}

const SUMMARY_COLUMNS = `id, node_threshold, edge_threshold, pinned, is_default, n_nodes, n_edges,
  replacement_score, completeness_score, created_at, last_used_at`;

const viewSummary = (r: ViewRow): ViewSummary => ({
  id: r.id,
  nodeThreshold: r.node_threshold,
  edgeThreshold: r.edge_threshold,
  pinned: r.pinned,
  isDefault: r.is_default === 1,
  nNodes: r.n_nodes,
  nEdges: r.n_edges,
  replacementScore: r.replacement_score,
  completenessScore: r.completeness_score,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class GraphRepository {
  constructor(
    private readonly db: Db,
    /** Absolute folder of the sidecars. */
    readonly dir: string,
    private readonly now: () => number,
  ) {}

  filePath(file: string): string {
    return path.join(this.dir, file);
  }

  // ---- sidecars

  /**
   * Steps 1–2: registers the file as pending, then writes it durably. Must not run inside a
   * transaction (the pending row has to be committed before the file exists).
   */
  writeSidecar(nodes: AttributionNodes, csr: CsrAdjacency): WrittenSidecar {
    if (this.db.inTransaction) throw new Error('writeSidecar must run outside a transaction');
    const file = `${crypto.randomUUID()}${GRAPH_FILE_EXT}`;
    this.db
      .prepare('INSERT INTO pending_files (file, pid, host, created_at) VALUES (?, ?, ?, ?)')
      .run(file, process.pid, os.hostname(), this.now());
    try {
      const bytes = writeGraphFile(this.filePath(file), nodes, csr);
      return { file, bytes, sha256: adjacencyHash(csr), nnz: csr.col.length };
    } catch (e) {
      this.discardSidecar(file);
      throw e;
    }
  }

  /** Removes a written sidecar that will not be committed. */
  discardSidecar(file: string): void {
    fs.rmSync(this.filePath(file), { force: true });
    fs.rmSync(`${this.filePath(file)}.tmp`, { force: true });
    this.db.prepare('DELETE FROM pending_files WHERE file = ?').run(file);
  }

  /** Step 3 (inside the caller's transaction): the graph row and the feature index. */
  insert(traceId: number, nodes: AttributionNodes, sidecar: WrittenSidecar): void {
    const lay = nodeLayout(nodes);
    const f = nodes.features;
    this.db
      .prepare(
        `INSERT INTO graphs (trace_id, n_layers, n_positions, n_features, n_logits, n_nodes, nnz, prompt_token_ids,
         prompt_tokens, feature_layer, feature_position, feature_index, feature_activation, logit_token_ids,
         logit_probabilities, logit_tokens, sidecar, sidecar_bytes, adjacency_sha256, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        traceId,
        nodes.nLayers,
        nodes.nPositions,
        lay.nFeatures,
        lay.nLogits,
        lay.total,
        sidecar.nnz,
        blob(nodes.promptTokenIds),
        JSON.stringify(nodes.promptTokens),
        blob(f.layer),
        blob(f.position),
        blob(f.index),
        blob(f.activation),
        blob(nodes.logits.tokenId),
        blob(nodes.logits.probability),
        JSON.stringify(nodes.logits.token),
        sidecar.file,
        sidecar.bytes,
        sidecar.sha256,
        this.now(),
      );
    const ins = this.db.prepare(
      'INSERT OR IGNORE INTO trace_features (trace_id, layer, feature_index) VALUES (?, ?, ?)',
    );
    for (let i = 0; i < lay.nFeatures; i++) ins.run(traceId, f.layer[i], f.index[i]);
    this.db.prepare('DELETE FROM pending_files WHERE file = ?').run(sidecar.file);
  }

  /** The sidecar's file name: unique per stored graph (a cache key that never aliases). */
  sidecarName(traceId: number): string {
    return this.row(traceId).sidecar;
  }

  has(traceId: number): boolean {
    return this.db.prepare('SELECT 1 FROM graphs WHERE trace_id = ?').get(traceId) !== undefined;
  }

  private row(traceId: number): GraphRow {
    const r = this.db.prepare('SELECT * FROM graphs WHERE trace_id = ?').get(traceId) as GraphRow | undefined;
    if (!r) throw notFound('graph of trace', traceId);
    return r;
  }

  /** The node tables (no adjacency). */
  nodes(traceId: number): AttributionNodes {
    const r = this.row(traceId);
    return {
      nLayers: r.n_layers,
      nPositions: r.n_positions,
      promptTokenIds: int32s(r.prompt_token_ids),
      promptTokens: JSON.parse(r.prompt_tokens),
      features: {
        layer: int32s(r.feature_layer),
        position: int32s(r.feature_position),
        index: int32s(r.feature_index),
        activation: float32s(r.feature_activation),
      },
      logits: {
        tokenId: int32s(r.logit_token_ids),
        probability: float32s(r.logit_probabilities),
        token: JSON.parse(r.logit_tokens),
      },
    };
  }

  csr(traceId: number): CsrAdjacency {
    const r = this.row(traceId);
    const csr = readGraphAdjacency(this.filePath(r.sidecar), r.n_nodes, r.sidecar_bytes);
    if (csr.col.length !== r.nnz) {
      throw new StoreError(
        'corrupt',
        `the graph file of trace ${traceId} has ${csr.col.length} entries, expected ${r.nnz}`,
      );
    }
    return csr;
  }

  /** The unpruned graph, dense, for re-pruning. */
  loadRaw(traceId: number): RawAttributionGraph {
    const nodes = this.nodes(traceId);
    return { nodes, adjacency: csrToDense(this.csr(traceId)) };
  }

  /** Problems with the trace's sidecar (missing, truncated, content hash); [] when sound. */
  verify(traceId: number): string[] {
    const r = this.row(traceId);
    try {
      const csr = this.csr(traceId);
      const h = adjacencyHash(csr);
      return h === r.adjacency_sha256
        ? []
        : [`the adjacency of trace ${traceId} does not match its recorded hash`];
    } catch (e) {
      if (e instanceof StoreError) return [e.message];
      throw e;
    }
  }

  // ---- pruned views

  putView(
    traceId: number,
    pruned: PrunedGraph,
    opts: { pinned?: string; isDefault?: boolean } = {},
  ): ViewSummary {
    const t = this.now();
    const key = opts.pinned ?? '';
    return this.db.transaction(() => {
      if (opts.isDefault)
        this.db.prepare('UPDATE pruned_views SET is_default = 0 WHERE trace_id = ?').run(traceId);
      this.db
        .prepare(
          `INSERT INTO pruned_views (trace_id, node_threshold, edge_threshold, pinned, is_default, n_nodes, n_edges,
           kept_nodes, node_influence, edge_target, edge_source, edge_weight, replacement_score, completeness_score,
           created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (trace_id, node_threshold, edge_threshold, pinned) DO UPDATE SET
             is_default = max(is_default, excluded.is_default), n_nodes = excluded.n_nodes,
             n_edges = excluded.n_edges, kept_nodes = excluded.kept_nodes, node_influence = excluded.node_influence,
             edge_target = excluded.edge_target, edge_source = excluded.edge_source,
             edge_weight = excluded.edge_weight, replacement_score = excluded.replacement_score,
             completeness_score = excluded.completeness_score, last_used_at = excluded.last_used_at`,
        )
        .run(
          traceId,
          pruned.nodeThreshold,
          pruned.edgeThreshold,
          key,
          opts.isDefault ? 1 : 0,
          pruned.keptNodes.length,
          pruned.edges.target.length,
          blob(pruned.keptNodes),
          blob(pruned.nodeInfluence),
          blob(pruned.edges.target),
          blob(pruned.edges.source),
          blob(pruned.edges.weight),
          Number.isFinite(pruned.replacementScore) ? pruned.replacementScore : null,
          Number.isFinite(pruned.completenessScore) ? pruned.completenessScore : null,
          t,
          t,
        );
      this.db
        .prepare(
          `DELETE FROM pruned_views WHERE trace_id = ? AND is_default = 0 AND id NOT IN (
             SELECT id FROM pruned_views WHERE trace_id = ? AND is_default = 0
             ORDER BY last_used_at DESC, id DESC LIMIT ?)`,
        )
        .run(traceId, traceId, MAX_VIEWS_PER_TRACE);
      const r = this.db
        .prepare(
          `SELECT ${SUMMARY_COLUMNS} FROM pruned_views
           WHERE trace_id = ? AND node_threshold = ? AND edge_threshold = ? AND pinned = ?`,
        )
        .get(traceId, pruned.nodeThreshold, pruned.edgeThreshold, key) as ViewRow;
      return viewSummary(r);
    })();
  }

  private decodeView(r: ViewRow): StoredView {
    return {
      summary: viewSummary(r),
      pruned: {
        keptNodes: int32s(r.kept_nodes!),
        nodeInfluence: float32s(r.node_influence!),
        edges: {
          target: int32s(r.edge_target!),
          source: int32s(r.edge_source!),
          weight: float32s(r.edge_weight!),
        },
        replacementScore: r.replacement_score ?? Number.NaN,
        completenessScore: r.completeness_score ?? Number.NaN,
        nodeThreshold: r.node_threshold,
        edgeThreshold: r.edge_threshold,
      },
    };
  }

  private touch(id: number): void {
    if (this.db.readonly) return;
    this.db.prepare('UPDATE pruned_views SET last_used_at = ? WHERE id = ?').run(this.now(), id);
  }

  /** The stored view at exactly these thresholds and pinned set, or null. */
  getView(traceId: number, nodeThreshold: number, edgeThreshold: number, pinned = ''): StoredView | null {
    const r = this.db
      .prepare(
        'SELECT * FROM pruned_views WHERE trace_id = ? AND node_threshold = ? AND edge_threshold = ? AND pinned = ?',
      )
      .get(traceId, nodeThreshold, edgeThreshold, pinned) as ViewRow | undefined;
    if (!r) return null;
    this.touch(r.id);
    return this.decodeView(r);
  }

  /** The view saved with the trace (its own thresholds), or null. */
  defaultView(traceId: number): StoredView | null {
    const r = this.db
      .prepare('SELECT * FROM pruned_views WHERE trace_id = ? AND is_default = 1')
      .get(traceId) as ViewRow | undefined;
    return r ? this.decodeView(r) : null;
  }

  listViews(traceId: number): ViewSummary[] {
    return (
      this.db
        .prepare(
          `SELECT ${SUMMARY_COLUMNS} FROM pruned_views WHERE trace_id = ? ORDER BY is_default DESC, last_used_at DESC`,
        )
        .all(traceId) as ViewRow[]
    ).map(viewSummary);
  }

  // ---- orphans

  /**
   * Deletes sidecar files no graph row references, unless a live process of this host is
   * still writing them (their pending row); forgets pending rows of dead processes. Files
   * other processes on other hosts registered are left alone for a day.
   *
   * Safe while other processes save: the folder is listed FIRST, and only then are both
   * tables read, in one read transaction (one snapshot). A writer commits its pending row
   * before its file exists, and removes that row in the same transaction that inserts the
   * graph row; so a file seen in the listing is, in the later snapshot, either still pending
   * (kept while its writer lives), referenced (kept), or really abandoned. A file created after
   * the listing is not considered at all.
   */
  removeOrphans(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    const host = os.hostname();
    const names = fs.readdirSync(this.dir);
    const { referenced, pending } = this.db.transaction(() => ({
      referenced: new Set(this.db.prepare('SELECT sidecar FROM graphs').pluck().all() as string[]),
      pending: new Map(
        (
          this.db.prepare('SELECT file, pid, host, created_at FROM pending_files').all() as Array<{
            file: string;
            pid: number;
            host: string;
            created_at: number;
          }>
        ).map((p) => [p.file, p]),
      ),
    }))();
    const live = (file: string) => {
      const p = pending.get(file);
      if (!p) return false;
      return p.host === host ? processAlive(p.pid) : this.now() - p.created_at < 86_400_000;
    };
    const removed: string[] = [];
    for (const name of names) {
      const base = name.endsWith('.tmp') ? name.slice(0, -4) : name;
      if (!base.endsWith(GRAPH_FILE_EXT)) continue;
      // A referenced graph's leftover `.tmp` cannot be one: it was renamed before the commit.
      if (referenced.has(base) && name === base) continue;
      if (live(base)) continue;
      fs.rmSync(path.join(this.dir, name), { force: true });
      removed.push(name);
    }
    // Only rows of dead writers (or a day old from other hosts): none of them can still commit.
    const forget = this.db.prepare('DELETE FROM pending_files WHERE file = ?');
    for (const file of pending.keys()) if (!live(file)) forget.run(file);
    return removed;
  }
}
