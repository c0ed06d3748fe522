/** The library against real SQLite files: schema, repositories, graph round trips, clean-up. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pruneGraph } from '../../electron/engine/pruning/index.ts';
import { GRAPH_DIR, LIBRARY_FILE } from '../../electron/store/data-dir.ts';
import { APPLICATION_ID } from '../../electron/store/database.ts';
import { StoreError } from '../../electron/store/errors.ts';
import { csrToDense, denseToCsr } from '../../electron/store/graph-file.ts';
import { MAX_VIEWS_PER_TRACE, pinnedKey } from '../../electron/store/graphs.ts';
import { acquireServiceLock, LOCK_FILE, processStartTime } from '../../electron/store/lock.ts';
import { SCHEMA_VERSION } from '../../electron/store/migrations/index.ts';
import { Store } from '../../electron/store/store.ts';
import { SETTINGS, saveSynthetic, tempDir } from './helpers.ts';
import { syntheticGraph } from './synthetic.ts';

let tmp: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  tmp = tempDir('cw-store-');
  store = Store.open(tmp.dir);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

const sidecars = (dir: string) => fs.readdirSync(path.join(dir, GRAPH_DIR)).sort();

describe('database', () => {
  it('opens in WAL mode with foreign keys, versioned by user_version, marked as ours', () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(store.db.pragma('busy_timeout', { simple: true })).toBeGreaterThanOrEqual(1000);
    expect(store.check()).toEqual(['ok']);
    store.close();
    store = Store.open(tmp.dir); // re-open: nothing to migrate
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  });

  it('refuses a library written by a newer app, and a foreign SQLite file', () => {
    store.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    store.close();
    expect(() => Store.open(tmp.dir)).toThrow(/newer than this app/);
    expect(() => Store.open(tmp.dir, { readonly: true })).toThrow(/newer than this app/);
    const other = tempDir('cw-foreign-');
    const db = new Database(path.join(other.dir, LIBRARY_FILE));
    db.exec('CREATE TABLE t (x)');
    db.close();
    try {
      expect(() => Store.open(other.dir)).toThrow(/not a Circuit Workbench library/);
    } finally {
      other.cleanup();
      fs.rmSync(path.join(tmp.dir, LIBRARY_FILE));
      store = Store.open(tmp.dir);
    }
  });

  it('one queue runner per library: a live holder is named, a dead one is taken over', () => {
    const lock = acquireServiceLock(tmp.dir);
    expect(() => acquireServiceLock(tmp.dir)).toThrow(/already served by this process/);
    lock.release();
    expect(fs.existsSync(path.join(tmp.dir, LOCK_FILE))).toBe(false);
    const host = os.hostname();
    fs.writeFileSync(
      path.join(tmp.dir, LOCK_FILE),
      JSON.stringify({ pid: 2 ** 22 + 99, host, startedAt: 0 }),
    );
    acquireServiceLock(tmp.dir).release(); // that process is gone
    fs.writeFileSync(
      path.join(tmp.dir, LOCK_FILE),
      JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: 0 }),
    );
    expect(() => acquireServiceLock(tmp.dir)).toThrow(/process 1 on elsewhere/);
    fs.rmSync(path.join(tmp.dir, LOCK_FILE));
  });

  it.runIf(process.platform === 'linux')(
    'a lock whose PID was reused by another process is stale (start time differs): issue 14, item 8',
    () => {
      const host = os.hostname();
      const start = processStartTime(process.pid);
      expect(start).toMatch(/^\d+$/);
      const other = String(Number(start) + 12_345);
      // The PID is alive (this process, or the parent) but started at another time: reused.
      for (const pid of [process.pid, process.ppid]) {
        fs.writeFileSync(
          path.join(tmp.dir, LOCK_FILE),
          JSON.stringify({ pid, host, startedAt: 0, procStart: other }),
        );
        acquireServiceLock(tmp.dir).release();
        expect(fs.existsSync(path.join(tmp.dir, LOCK_FILE))).toBe(false);
      }
      // The same PID and start time is the live holder still.
      const ppidStart = processStartTime(process.ppid);
      fs.writeFileSync(
        path.join(tmp.dir, LOCK_FILE),
        JSON.stringify({ pid: process.ppid, host, startedAt: 0, procStart: ppidStart }),
      );
      expect(() => acquireServiceLock(tmp.dir)).toThrow(new RegExp(`process ${process.ppid} on`));
      fs.rmSync(path.join(tmp.dir, LOCK_FILE));
      const lock = acquireServiceLock(tmp.dir);
      expect(JSON.parse(fs.readFileSync(path.join(tmp.dir, LOCK_FILE), 'utf8')).procStart).toBe(start);
      expect(() => acquireServiceLock(tmp.dir)).toThrow(/already served by this process/);
      lock.release();
    },
  );

  it('read-only opening needs an existing library', () => {
    const empty = tempDir('cw-empty-');
    try {
      expect(() => Store.open(empty.dir, { readonly: true })).toThrow(StoreError);
    } finally {
      empty.cleanup();
    }
    const ro = Store.open(tmp.dir, { readonly: true });
    expect(ro.readonly).toBe(true);
    expect(ro.projects.list()).toEqual([]);
    ro.close();
  });
});

describe('projects', () => {
  it('creates, renames, refuses duplicate names and deletes with their traces', () => {
    const a = store.projects.create('Capitals', 'state capitals');
    expect(a).toMatchObject({ name: 'Capitals', description: 'state capitals', traceCount: 0 });
    expect(() => store.projects.create('capitals')).toThrow(/exists/);
    expect(store.projects.ensure('Capitals').id).toBe(a.id);
    const b = store.projects.update(a.id, { name: 'Geography' });
    expect(b.name).toBe('Geography');
    const t = saveSynthetic(store, syntheticGraph(1), { projectId: a.id });
    expect(store.projects.get(a.id).traceCount).toBe(1);
    expect(sidecars(tmp.dir)).toHaveLength(1);
    store.deleteProject(a.id);
    expect(store.traces.find(t.id)).toBeNull();
    expect(sidecars(tmp.dir)).toEqual([]);
    expect(() => store.projects.get(a.id)).toThrow(/does not exist/);
    expect(store.check()).toEqual(['ok']);
  });
});

describe('graphs', () => {
  it('CSR is an exact encoding of the dense adjacency', () => {
    const g = syntheticGraph(2);
    const N = Math.sqrt(g.adjacency.length);
    g.adjacency[5] = -0; // negative zero is a zero
    const csr = denseToCsr(g.adjacency, N);
    const back = csrToDense(csr);
    for (let i = 0; i < back.length; i++) expect(back[i] === g.adjacency[i]).toBe(true);
    // odd sizes, zeros of both signs, an unaligned view, empty and full rows
    for (const n of [1, 2, 7, 33]) {
      for (const offset of [0, 1]) {
        const buf = new Float32Array(n * n + offset);
        const a = buf.subarray(offset);
        for (let i = 0; i < a.length; i++)
          a[i] = i % 3 === 0 ? (i % 2 ? -0 : 0) : i % 5 === 0 ? 0 : (i % 7) - 3.5;
        a.fill(0, 0, Math.min(n, a.length)); // row 0 empty
        const c = denseToCsr(a, n);
        expect(c.rowPtr[0]).toBe(0);
        expect(c.rowPtr[n]).toBe(c.col.length);
        expect(Array.from(csrToDense(c))).toEqual(Array.from(a, (x) => (x === 0 ? 0 : x)));
        for (let t = 0; t < n; t++) {
          for (let q = c.rowPtr[t]; q < c.rowPtr[t + 1]; q++) expect(a[t * n + c.col[q]]).toBe(c.val[q]);
        }
      }
    }
  });

  it('a saved graph loads back bit for bit, with its node tables, view and feature index', () => {
    const g = syntheticGraph(3, { nFeatures: 200 });
    const t = saveSynthetic(store, g, { tags: ['texas', 'capitals'] });
    expect(t).toMatchObject({ status: 'done', source: 'trace', tags: ['capitals', 'texas'] });
    expect(t.graph).toMatchObject({ nFeatures: 200, nLayers: 4, nPositions: 6, nLogits: 4 });
    const raw = store.graphs.loadRaw(t.id);
    expect(raw.nodes.features.layer).toEqual(g.nodes.features.layer);
    expect(raw.nodes.features.activation).toEqual(g.nodes.features.activation);
    expect(raw.nodes.logits).toEqual(g.nodes.logits);
    expect(raw.nodes.promptTokens).toEqual(g.nodes.promptTokens);
    expect(Buffer.from(raw.adjacency.buffer).equals(Buffer.from(g.adjacency.buffer))).toBe(true);
    expect(store.graphs.verify(t.id)).toEqual([]);
    const def = store.graphs.defaultView(t.id)!;
    const fresh = pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 });
    expect(def.pruned).toEqual(fresh);
    const f0 = { layer: g.nodes.features.layer[0], index: g.nodes.features.index[0] };
    expect(store.traces.list({ feature: f0 }).traces.map((x) => x.id)).toEqual([t.id]);
    expect(store.traces.list({ feature: { layer: 99, index: 0 } }).total).toBe(0);
  });

  it('re-pruning a stored graph at new thresholds equals pruning the fresh graph', () => {
    const g = syntheticGraph(4, { nFeatures: 300, nLayers: 5, nPositions: 8 });
    const t = saveSynthetic(store, g);
    store.close();
    store = Store.open(tmp.dir); // from disk, not from any cache
    const loaded = store.graphs.loadRaw(t.id);
    for (const [nt, et] of [
      [0.5, 0.9],
      [0.95, 0.999],
      [0.3, 0.5],
      [1, 1],
    ]) {
      const a = pruneGraph(g, { nodeThreshold: nt, edgeThreshold: et });
      const b = pruneGraph(loaded, { nodeThreshold: nt, edgeThreshold: et });
      expect(b).toEqual(a);
      store.graphs.putView(t.id, b);
      expect(store.graphs.getView(t.id, nt, et)!.pruned).toEqual(a);
    }
    expect(store.graphs.listViews(t.id)).toHaveLength(5);
  });

  it('keeps the default view and the most recently used others', () => {
    const g = syntheticGraph(5);
    const t = saveSynthetic(store, g);
    for (let k = 0; k < MAX_VIEWS_PER_TRACE + 5; k++) {
      store.graphs.putView(t.id, pruneGraph(g, { nodeThreshold: 0.5 + k / 100, edgeThreshold: 0.9 }));
    }
    const views = store.graphs.listViews(t.id);
    expect(views).toHaveLength(MAX_VIEWS_PER_TRACE + 1);
    expect(views.filter((v) => v.isDefault)).toHaveLength(1);
    expect(views.some((v) => v.nodeThreshold === 0.5)).toBe(false); // the oldest went
    expect(pinnedKey([5, 2, 5, 9])).toBe('2,5,9');
    const pinned = pruneGraph(g, { nodeThreshold: 0.5, edgeThreshold: 0.9, pinned: [0, 1] });
    store.graphs.putView(t.id, pinned, { pinned: pinnedKey([1, 0]) });
    expect(store.graphs.getView(t.id, 0.5, 0.9, '0,1')!.pruned).toEqual(pinned);
    expect(store.graphs.getView(t.id, 0.5, 0.9, '')).toBeNull();
  });

  it('a failed save leaves neither rows nor files', () => {
    const failing = Store.open(tmp.dir, {
      hooks: {
        beforeCommit: () => {
          throw new Error('disk full (simulated)');
        },
      },
    });
    try {
      expect(() => saveSynthetic(failing, syntheticGraph(6))).toThrow(/simulated/);
    } finally {
      failing.close();
    }
    expect(store.traces.list().total).toBe(0);
    expect(sidecars(tmp.dir)).toEqual([]);
    expect(store.db.prepare('SELECT count(*) FROM pending_files').pluck().get()).toBe(0);
    expect(store.db.prepare('SELECT count(*) FROM trace_features').pluck().get()).toBe(0);
  });

  it('removes orphan sidecars of dead processes on open, never those of live ones or referenced ones', () => {
    const t = saveSynthetic(store, syntheticGraph(7));
    const dir = path.join(tmp.dir, GRAPH_DIR);
    const insert = store.db.prepare(
      'INSERT INTO pending_files (file, pid, host, created_at) VALUES (?, ?, ?, ?)',
    );
    const host = os.hostname();
    fs.writeFileSync(path.join(dir, 'dead.cwgraph'), 'x');
    fs.writeFileSync(path.join(dir, 'dead2.cwgraph.tmp'), 'x');
    insert.run('dead.cwgraph', 2 ** 22 + 12345, host, Date.now()); // no such pid
    insert.run('dead2.cwgraph', 2 ** 22 + 12346, host, Date.now());
    fs.writeFileSync(path.join(dir, 'live.cwgraph.tmp'), 'x');
    insert.run('live.cwgraph', process.pid, host, Date.now());
    fs.writeFileSync(path.join(dir, 'unregistered.cwgraph'), 'x');
    fs.writeFileSync(path.join(dir, 'README.txt'), 'not ours');
    store.close();
    store = Store.open(tmp.dir);
    const left = sidecars(tmp.dir);
    expect(left).toContain('live.cwgraph.tmp');
    expect(left).toContain('README.txt');
    expect(left).not.toContain('dead.cwgraph');
    expect(left).not.toContain('dead2.cwgraph.tmp');
    expect(left).not.toContain('unregistered.cwgraph');
    expect(store.graphs.verify(t.id)).toEqual([]);
    expect(store.db.prepare('SELECT file FROM pending_files').pluck().all()).toEqual(['live.cwgraph']);
  });

  it('reports a missing or altered sidecar', () => {
    const t = saveSynthetic(store, syntheticGraph(8));
    const file = store.db
      .prepare('SELECT sidecar FROM graphs WHERE trace_id = ?')
      .pluck()
      .get(t.id) as string;
    const full = path.join(tmp.dir, GRAPH_DIR, file);
    const bytes = fs.readFileSync(full);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
    bytes[8 + headerLength + header.val.data_offsets[0] + 2] ^= 0x40; // one bit of the first edge weight
    fs.writeFileSync(full, bytes);
    expect(store.check()[0]).toMatch(/does not match its recorded hash/);
    fs.rmSync(full);
    expect(() => store.graphs.loadRaw(t.id)).toThrow(/is missing/);
  });
});

describe('traces', () => {
  it('searches by prompt, tag, status, feature and project; trash and restore; purge removes the file', () => {
    const p = store.projects.create('Other');
    const a = saveSynthetic(store, syntheticGraph(10), {
      prompt: 'The capital of Texas is',
      tags: ['capitals'],
    });
    const b = saveSynthetic(store, syntheticGraph(11), {
      prompt: '100% of 50_ is',
      tags: ['math', 'capitals'],
    });
    const c = saveSynthetic(store, syntheticGraph(12), { prompt: 'Oakland is in', projectId: p.id });
    const ids = (f: Parameters<Store['traces']['list']>[0]) => store.traces.list(f).traces.map((t) => t.id);
    expect(ids({ query: 'texas' })).toEqual([a.id]);
    expect(ids({ query: '100%' })).toEqual([b.id]);
    expect(ids({ query: '%' })).toEqual([b.id]); // LIKE wildcards are literal
    expect(ids({ query: '_' })).toEqual([b.id]);
    expect(ids({ tags: ['capitals'] }).sort()).toEqual([a.id, b.id]);
    expect(ids({ tags: ['capitals', 'math'] })).toEqual([b.id]);
    expect(ids({ projectId: p.id })).toEqual([c.id]);
    expect(ids({ status: 'done' })).toHaveLength(3);
    expect(store.traces.tags()).toEqual([
      { tag: 'capitals', count: 2 },
      { tag: 'math', count: 1 },
    ]);
    store.traces.softDelete(b.id);
    expect(ids({})).not.toContain(b.id);
    expect(ids({ deleted: 'only' })).toEqual([b.id]);
    store.traces.restore(b.id);
    expect(ids({})).toContain(b.id);
    store.traces.removeTags(b.id, ['math']);
    expect(store.traces.get(b.id).tags).toEqual(['capitals']);
    const before = sidecars(tmp.dir).length;
    store.purgeTrace(c.id);
    expect(sidecars(tmp.dir)).toHaveLength(before - 1);
    expect(store.traces.find(c.id)).toBeNull();
    expect(store.db.prepare('SELECT count(*) FROM pruned_views WHERE trace_id = ?').pluck().get(c.id)).toBe(
      0,
    );
    expect(store.check()).toEqual(['ok']);
  });

  it('never reuses the id of a deleted trace', () => {
    const a = saveSynthetic(store, syntheticGraph(14));
    store.purgeTrace(a.id);
    const b = saveSynthetic(store, syntheticGraph(15));
    expect(b.id).toBeGreaterThan(a.id);
  });

  it('enforces status transitions and purges the trash after its retention', () => {
    const id = store.traces.create({
      projectId: store.projects.ensureDefault().id,
      modelId: null,
      transcoderSetId: null,
      source: 'trace',
      prompt: 'x',
      tokenIds: null,
      settings: SETTINGS,
      status: 'queued',
    });
    store.traces.setStatus(id, 'running', { startedAt: 1 });
    store.traces.setProgress(id, { phase: 'features', done: 2, total: 5 });
    expect(store.traces.get(id).progress).toEqual({ phase: 'features', done: 2, total: 5 });
    store.traces.setStatus(id, 'failed', {
      error: { code: 'resources', message: 'too big' },
      progress: null,
    });
    expect(store.traces.get(id)).toMatchObject({
      status: 'failed',
      error: { code: 'resources', message: 'too big' },
    });
    expect(() => store.traces.setStatus(id, 'done')).toThrow(/cannot become done/);
    const t = saveSynthetic(store, syntheticGraph(13));
    expect(() => store.traces.setStatus(t.id, 'running')).toThrow(/cannot become running/);
    store.traces.softDelete(t.id);
    store.close();
    store = Store.open(tmp.dir, { trashRetentionMs: -1 });
    expect(store.traces.find(t.id)).toBeNull();
    expect(sidecars(tmp.dir)).toEqual([]);
  });
});

describe('models, features, annotations, jobs', () => {
  it('labels belong to the transcoder set (shared by its graphs), found by content hash', () => {
    const set = store.models.ensureTranscoderSet({
      contentHash: 'abc',
      dir: '/a',
      kind: 'plt',
      nLayers: 4,
      dModel: 8,
      dTranscoder: 16,
    });
    const again = store.models.ensureTranscoderSet({
      contentHash: 'abc',
      dir: '/moved',
      kind: 'plt',
      nLayers: 4,
      dModel: 8,
      dTranscoder: 16,
    });
    expect(again.id).toBe(set.id);
    expect(store.models.getTranscoderSet(set.id).dir).toBe('/moved');
    store.features.setLabel(set.id, 2, 7, 'Texas');
    expect(store.features.get(set.id, 2, 7).label).toBe('Texas');
    expect([...store.features.labels(set.id)]).toEqual([['2:7', 'Texas']]);
    expect(store.features.search(set.id, 'tex').map((f) => f.index)).toEqual([7]);
    store.features.putDashboards(set.id, [
      {
        layer: 2,
        index: 7,
        dashboard: {
          index: 7,
          layer: 2,
          feature: 0,
          examples_quantiles: [],
          top_logits: [' Austin'],
          bottom_logits: [],
          act_min: 0,
          act_max: 3,
          quantile_values: [],
          histogram: null,
          activation_frequency: 0.01,
        },
      },
    ]);
    expect(store.features.get(set.id, 2, 7)).toMatchObject({
      label: 'Texas',
      dashboard: { top_logits: [' Austin'] },
    });
    store.features.setLabel(set.id, 2, 7, '');
    expect(store.features.get(set.id, 2, 7).label).toBeNull();
    store.features.setLabel(set.id, 3, 1, 'x');
    store.features.setLabel(set.id, 3, 1, null);
    expect(store.db.prepare('SELECT count(*) FROM features WHERE layer = 3').pluck().get()).toBe(0);

    const m = store.models.upsert({
      name: 'tiny',
      checkpointDir: '/m',
      transcoderDir: '/a',
      transcoderSet: { contentHash: 'abc', dir: '/a', kind: 'plt', nLayers: 4, dModel: 8, dTranscoder: 16 },
      contentHash: 'h1',
      family: 'gemma2',
      nLayers: 4,
      validation: { valid: true, problems: [], model: null, transcoders: null },
    });
    expect(m).toMatchObject({ transcoderSetId: set.id, valid: true });
    const m2 = store.models.upsert({
      ...store.models.get(m.id),
      transcoderSet: null,
      contentHash: 'h2',
      validation: {
        valid: false,
        problems: [{ code: 'shape', message: 'bad' }],
        model: null,
        transcoders: null,
      },
    });
    expect(m2).toMatchObject({ id: m.id, valid: false, contentHash: 'h2' });
    expect(m2.validation.problems[0].message).toBe('bad');
  });

  it('annotations persist per trace and go with it', () => {
    const t = saveSynthetic(store, syntheticGraph(20));
    expect(store.annotations.get(t.id).pinned).toEqual([]);
    store.annotations.update(t.id, {
      pinned: ['0_1_2'],
      supernodes: [{ label: 'Texas', nodeIds: ['0_1_2', 'E_100_1'] }],
    });
    store.annotations.update(t.id, { layout: { '0_1_2': { x: 1, y: 2 } } });
    // A field given as undefined (what the API passes for an absent one) leaves it unchanged.
    store.annotations.update(t.id, { pinned: undefined, labels: { '0_1_2': 'Texas feature' } });
    expect(store.annotations.get(t.id).labels).toEqual({ '0_1_2': 'Texas feature' });
    expect(store.annotations.get(t.id)).toMatchObject({
      pinned: ['0_1_2'],
      supernodes: [{ label: 'Texas', nodeIds: ['0_1_2', 'E_100_1'] }],
      layout: { '0_1_2': { x: 1, y: 2 } },
    });
    store.purgeTrace(t.id);
    expect(store.db.prepare('SELECT count(*) FROM annotations').pluck().get()).toBe(0);
  });

  it('the job queue: claims, transitions, recovery', () => {
    const trace = saveSynthetic(store, syntheticGraph(21));
    const a = store.jobs.enqueue({ kind: 'trace', device: 'cpu', params: { n: 1 }, traceId: trace.id });
    const b = store.jobs.enqueue({ kind: 'trace', device: 'cpu', params: { n: 2 }, priority: 5 });
    const c = store.jobs.enqueue({ kind: 'dashboards', device: 'gpu', params: {} });
    expect(a).toMatchObject({
      state: 'queued',
      attempts: 0,
      resume: false,
      params: { n: 1 },
      traceId: trace.id,
    });
    expect(store.jobs.claimAny(['trace'])!.id).toBe(b.id); // priority first
    expect(store.jobs.claimAny(['trace'])!.id).toBe(a.id);
    expect(store.jobs.claimAny(['trace'])).toBeNull();
    expect(store.jobs.claimAny([])).toBeNull();
    store.jobs.updateProgress(a.id, { phase: 'features', done: 1, total: 2 });
    expect(store.jobs.get(a.id)!.progress).toEqual({ phase: 'features', done: 1, total: 2 });
    store.jobs.complete(a.id, { ok: true });
    store.jobs.fail(a.id, { message: 'late' }); // not running any more: no-op
    expect(store.jobs.get(a.id)).toMatchObject({ state: 'done', result: { ok: true }, error: null });
    expect(store.jobs.requeue(a.id, { resume: false })).toBe(false); // done stays done
    // the process dies with b running
    expect(store.jobs.recoverInterrupted().map((j) => [j.id, j.state])).toEqual([[b.id, 'interrupted']]);
    expect(store.jobs.requeue(b.id, { resume: true })).toBe(true);
    expect(store.jobs.claimAny(['trace'])).toMatchObject({ id: b.id, attempts: 2, resume: true });
    store.jobs.interrupt(b.id);
    expect(store.jobs.list({ states: ['interrupted'] }).map((j) => j.id)).toEqual([b.id]);
    expect(store.jobs.cancel(b.id)).toBe(true);
    expect(store.jobs.cancel(b.id)).toBe(false);
    expect(store.jobs.claimAny(['dashboards'])!.id).toBe(c.id);
    store.jobs.fail(c.id, { code: 'oom', message: 'out of memory' });
    expect(store.jobs.get(c.id)!.error).toEqual({ code: 'oom', message: 'out of memory' });
    expect(store.jobs.list().map((j) => j.id)).toEqual([c.id, b.id, a.id]); // newest first
    expect(store.jobs.list({ kind: 'trace', limit: 1 }).map((j) => j.id)).toEqual([b.id]);
    store.purgeTrace(trace.id); // a trace's jobs go with it
    expect(store.jobs.get(a.id)).toBeNull();
  });

  it("keeps a job's checkpoint while the job can still run, and deletes it on open once it cannot", () => {
    const job = (state: 'queued' | 'running' | 'interrupted' | 'done' | 'failed' | 'cancelled') => {
      const j = store.jobs.enqueue({ kind: 'dashboards', device: 'cpu', params: { state } });
      if (state === 'queued') return j.id;
      store.jobs.claimAny(['dashboards']);
      if (state === 'interrupted') store.jobs.interrupt(j.id);
      else if (state === 'done') store.jobs.complete(j.id, null);
      else if (state === 'failed') store.jobs.fail(j.id, { message: 'x' });
      else if (state === 'cancelled') store.jobs.cancel(j.id);
      return j.id;
    };
    const ids = {
      done: job('done'),
      failed: job('failed'),
      cancelled: job('cancelled'),
      interrupted: job('interrupted'),
      running: job('running'),
      queued: job('queued'),
    };
    const files = Object.fromEntries(
      Object.entries(ids).map(([state, id]) => [state, store.jobCheckpoint(id)]),
    );
    const jobsDir = path.dirname(files.done);
    expect(jobsDir).toBe(path.join(tmp.dir, 'jobs'));
    for (const f of Object.values(files)) fs.writeFileSync(f, 'checkpoint');
    fs.writeFileSync(path.join(jobsDir, '999.checkpoint'), 'of a job that is gone');
    fs.writeFileSync(path.join(jobsDir, `.${ids.running}.checkpoint.123.tmp`), 'a write cut short');
    fs.writeFileSync(path.join(jobsDir, 'notes.txt'), 'not ours');
    store.close();
    store = Store.open(tmp.dir);
    expect(fs.readdirSync(jobsDir).sort()).toEqual(
      [
        `${ids.interrupted}.checkpoint`,
        `${ids.queued}.checkpoint`,
        `${ids.running}.checkpoint`,
        'notes.txt',
      ].sort(),
    );
  });
});
