/**
 * The library: one SQLite database plus a folder of graph sidecars, behind repositories per
 * concept. `saveTrace` is the one way a finished graph enters the library, whole or not at all:
 * the sidecar is written and fsynced first, then one transaction inserts the trace (or completes
 * a queued one), its graph row, its pruned views and its annotations.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import type { JobId } from '../jobs/types.ts';
import { type AnnotationChanges, AnnotationRepository } from './annotations.ts';
import { GRAPH_DIR, JOB_DIR, LIBRARY_FILE } from './data-dir.ts';
import { type Db, integrityCheck, openDatabase } from './database.ts';
import { StoreError } from './errors.ts';
import { FeatureRepository } from './features.ts';
import { type CsrAdjacency, denseToCsr } from './graph-file.ts';
import { GraphRepository, pinnedKey, pinnedOfKey } from './graphs.ts';
import { InterventionRepository } from './interventions.ts';
import { JobRepository } from './jobs.ts';
import { ModelRepository } from './models.ts';
import { ProjectRepository } from './projects.ts';
import { type TraceInput, TraceRepository } from './traces.ts';
import type { TraceRecord } from './types.ts';

export interface StoreHooks {
  /** After the sidecar is durable, before the transaction (crash tests stop the process here). */
  afterSidecar?: (file: string) => void;
  /** Inside the transaction, after every row is written, before COMMIT. */
  beforeCommit?: (traceId: number) => void;
}

export interface StoreOptions {
  /** Open read-only (no migrations, no clean-up); the library must exist. */
  readonly?: boolean;
  hooks?: StoreHooks;
  now?: () => number;
  /** Traces in the trash longer than this are purged when the store opens (default 30 days). */
  trashRetentionMs?: number;
}

export interface SavedView {
  pruned: PrunedGraph;
  /** Raw node indices pinned when pruning (exempt from it). */
  pinned?: readonly number[];
}

export interface SaveTraceInput {
  /** Complete this existing (queued / running) trace; absent: insert a new one from `trace`. */
  traceId?: number;
  trace?: Omit<TraceInput, 'status'>;
  raw: RawAttributionGraph | { nodes: RawAttributionGraph['nodes']; csr: CsrAdjacency };
  /** The first is the trace's default view. */
  views: SavedView[];
  timings?: Record<string, number> | null;
  tokenIds?: number[] | null;
  annotations?: AnnotationChanges;
  finishedAt?: number;
}

/** A job checkpoint's file name: `<job id>.checkpoint`. */
const CHECKPOINT_EXT = '.checkpoint';

export class Store {
  readonly projects: ProjectRepository;
  readonly models: ModelRepository;
  readonly traces: TraceRepository;
  readonly graphs: GraphRepository;
  readonly features: FeatureRepository;
  readonly annotations: AnnotationRepository;
  readonly jobs: JobRepository;
  readonly interventions: InterventionRepository;
  readonly now: () => number;

  private constructor(
    readonly db: Db,
    readonly dataDir: string,
    private readonly hooks: StoreHooks,
    now: () => number,
  ) {
    this.now = now;
    this.projects = new ProjectRepository(db, now);
    this.models = new ModelRepository(db, now);
    this.traces = new TraceRepository(db, now);
    this.graphs = new GraphRepository(db, path.join(dataDir, GRAPH_DIR), now);
    this.features = new FeatureRepository(db, now);
    this.annotations = new AnnotationRepository(db, now);
    this.jobs = new JobRepository(db, now);
    this.interventions = new InterventionRepository(db, now);
  }

  /** Opens (creating it if needed) the library in `dataDir`. */
  static open(dataDir: string, opts: StoreOptions = {}): Store {
    const dir = path.resolve(dataDir);
    const file = path.join(dir, LIBRARY_FILE);
    if (opts.readonly) {
      if (!fs.existsSync(file))
        throw new StoreError('not_found', `no library in ${dir} (${LIBRARY_FILE} is missing)`, dir);
    } else {
      try {
        fs.mkdirSync(path.join(dir, GRAPH_DIR), { recursive: true });
      } catch (e) {
        throw new StoreError('io', `cannot create the data folder ${dir}: ${(e as Error).message}`, dir);
      }
    }
    const db = openDatabase(file, { readonly: opts.readonly });
    const store = new Store(db, dir, opts.hooks ?? {}, opts.now ?? Date.now);
    if (!opts.readonly) {
      try {
        store.graphs.removeOrphans();
        store.removeStaleJobCheckpoints();
        const retention = opts.trashRetentionMs ?? 30 * 86_400_000;
        for (const id of store.traces.trashedBefore(store.now() - retention)) store.purgeTrace(id);
      } catch (e) {
        db.close();
        throw e;
      }
    }
    return store;
  }

  get readonly(): boolean {
    return this.db.readonly;
  }

  /**
   * Where job `id` keeps its checkpoint (a resumable job's progress: dashboards), in the data
   * folder's jobs/ (created here). The file lives while the job can still run: the job's run
   * deletes it when it ends, and opening the store deletes any of a job that cannot run again.
   */
  jobCheckpoint(id: JobId): string {
    const dir = path.join(this.dataDir, JOB_DIR);
    fs.mkdirSync(dir, { recursive: true });
    return path.join(dir, `${id}${CHECKPOINT_EXT}`);
  }

  /**
   * Deletes the checkpoints of jobs that are gone or ended (done, failed, cancelled), and the
   * temporary files of writes a stopped process left (a checkpoint is written aside, then renamed).
   */
  removeStaleJobCheckpoints(): string[] {
    const dir = path.join(this.dataDir, JOB_DIR);
    if (!fs.existsSync(dir)) return [];
    const removed: string[] = [];
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        fs.rmSync(path.join(dir, name), { force: true });
        removed.push(name);
        continue;
      }
      if (!name.endsWith(CHECKPOINT_EXT)) continue;
      const id = Number(name.slice(0, -CHECKPOINT_EXT.length));
      const state = Number.isSafeInteger(id) ? this.jobs.get(id)?.state : undefined;
      if (state === 'queued' || state === 'running' || state === 'interrupted') continue;
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    }
    return removed;
  }

  /** Stores a finished graph with its trace (new or queued), whole or not at all. Returns the trace. */
  saveTrace(input: SaveTraceInput): TraceRecord {
    if ((input.traceId === undefined) === (input.trace === undefined)) {
      throw new Error('saveTrace needs exactly one of traceId and trace');
    }
    if (input.views.length === 0) throw new Error('saveTrace needs at least one pruned view');
    const nodes = input.raw.nodes;
    const csr = 'csr' in input.raw ? input.raw.csr : denseToCsr(input.raw.adjacency, nodeLayout(nodes).total);
    const sidecar = this.graphs.writeSidecar(nodes, csr);
    this.hooks.afterSidecar?.(sidecar.file);
    const finishedAt = input.finishedAt ?? this.now();
    try {
      const id = this.db
        .transaction(() => {
          let traceId: number;
          if (input.traceId !== undefined) {
            traceId = input.traceId;
            this.traces.setStatus(traceId, 'done', {
              progress: null,
              error: null,
              timings: input.timings ?? null,
              tokenIds: input.tokenIds,
              finishedAt,
            });
          } else {
            traceId = this.traces.create({
              ...input.trace!,
              status: 'done',
              tokenIds: input.tokenIds ?? input.trace!.tokenIds,
              timings: input.timings ?? input.trace!.timings ?? null,
              finishedAt,
            });
          }
          if (this.graphs.has(traceId))
            throw new StoreError('conflict', `trace ${traceId} already has a graph`);
          this.graphs.insert(traceId, nodes, sidecar);
          input.views.forEach((v, k) => {
            this.graphs.putView(traceId, v.pruned, { pinned: pinnedKey(v.pinned), isDefault: k === 0 });
          });
          if (input.annotations) this.annotations.update(traceId, input.annotations);
          this.hooks.beforeCommit?.(traceId);
          return traceId;
        })
        .immediate();
      return this.traces.get(id);
    } catch (e) {
      this.graphs.discardSidecar(sidecar.file);
      throw e;
    }
  }

  /** Deletes a trace for good (rows first, then its sidecar). */
  /**
   * Copies a finished trace — its graph, every stored view and its annotations, tags and notes —
   * into a new trace (in `projectId`, default the same project). Interventions stay with the
   * original. Nothing is recomputed; the copy has its own graph file.
   */
  duplicateTrace(id: number, opts: { projectId?: number; notes?: string } = {}): TraceRecord {
    const t = this.traces.get(id);
    const def = this.graphs.defaultView(id);
    if (t.status !== 'done' || !def || !this.graphs.has(id)) {
      throw new StoreError(
        'conflict',
        `trace ${id} is ${t.status}; only a trace with a graph can be duplicated`,
      );
    }
    const others = this.graphs
      .listViews(id)
      .filter((v) => !v.isDefault)
      .map((v) => this.graphs.getView(id, v.nodeThreshold, v.edgeThreshold, v.pinned))
      .filter((v): v is NonNullable<typeof v> => v !== null);
    const { traceId: _, updatedAt: __, ...annotations } = this.annotations.get(id);
    return this.saveTrace({
      trace: {
        projectId: opts.projectId ?? t.projectId,
        modelId: t.modelId,
        transcoderSetId: t.transcoderSetId,
        source: t.source,
        prompt: t.prompt,
        tokenIds: t.tokenIds,
        settings: t.settings,
        tags: t.tags,
        notes: opts.notes ?? t.notes,
        timings: t.timings,
      },
      raw: { nodes: this.graphs.nodes(id), csr: this.graphs.csr(id) },
      views: [def, ...others].map((v) => ({ pruned: v.pruned, pinned: pinnedOfKey(v.summary.pinned) })),
      annotations,
    });
  }

  purgeTrace(id: number): void {
    const file = this.traces.purge(id);
    if (file) fs.rmSync(this.graphs.filePath(file), { force: true });
  }

  /** Deletes a project, its traces and their sidecars. */
  deleteProject(id: number): void {
    for (const file of this.projects.delete(id)) fs.rmSync(this.graphs.filePath(file), { force: true });
  }

  /** SQLite's integrity and foreign-key checks plus every sidecar's presence, size and hash. */
  check(opts: { sidecars?: boolean } = {}): string[] {
    const problems = integrityCheck(this.db).filter((p) => p !== 'ok');
    if (opts.sidecars ?? true) {
      for (const id of this.db.prepare('SELECT trace_id FROM graphs').pluck().all() as number[]) {
        problems.push(...this.graphs.verify(id));
      }
    }
    return problems.length ? problems : ['ok'];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
