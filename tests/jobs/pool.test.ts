/**
 * The job pool with real worker threads (tsx-loaded TypeScript) on the library's SQLite queue:
 * trace jobs on the tiny fixtures, progress, cancel (cooperative and by terminate), crashes
 * of every kind, concurrency without cross-talk, shutdown → interrupted → resume.
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Attributor } from '../../electron/engine/attribution/attribute.ts';
import type { RawAttributionGraph } from '../../electron/engine/attribution/graph-types.ts';
import { openModel } from '../../electron/engine/model/open-model.ts';
import { loadTranscoderSet } from '../../electron/engine/transcoders/load.ts';
import { JobPool, type JobPoolOptions } from '../../electron/jobs/pool.ts';
import type { JobProgress, JobRecord, JsonValue } from '../../electron/jobs/types.ts';
import { FIXTURE_PROMPTS } from '../fixtures/prompts.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { LibraryJobQueue } from './library-queue.ts';

const FIX = fixturePath('tiny-gemma2');
const TC = path.join(FIX, 'transcoders', 'plt');
const DEMO = path.resolve(import.meta.dirname, '../../resources/models/gemma2-demo');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-jobs-'));
const cacheRoot = path.join(tmp, 'cache');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TEST_KINDS = [
  { kind: 'sleep', module: new URL('./kinds/sleep.ts', import.meta.url).href },
  { kind: 'crash', module: new URL('./kinds/crash.ts', import.meta.url).href },
];

let dbCount = 0;
function newPool(opts: JobPoolOptions & { libraryDir?: string } = {}) {
  const store = new LibraryJobQueue(opts.libraryDir ?? path.join(tmp, `library-${dbCount++}`));
  const pool = new JobPool({ slots: { cpu: 2 }, cancelGraceMs: 400, ...opts, store });
  for (const k of TEST_KINDS) pool.registerKind(k);
  return { pool, store };
}

function progressOf(pool: JobPool) {
  const events = new Map<number, JobProgress[]>();
  pool.on('progress', ({ id, progress }) => events.set(id, [...(events.get(id) ?? []), progress]));
  return events;
}

/** Resolves when job `id` reports progress matching `pred`. */
function whenProgress(pool: JobPool, id: number, pred: (p: JobProgress) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const on = (e: { id: number; progress: JobProgress }) => {
      if (e.id === id && pred(e.progress)) {
        pool.off('progress', on);
        resolve();
      }
    };
    pool.on('progress', on);
  });
}

const traceParams = (tokenIds: number[], extra: Record<string, JsonValue> = {}): JsonValue => ({
  model: FIX,
  transcoders: TC,
  tokenIds,
  batchSize: 64,
  cacheRoot,
  ...extra,
});

describe('job pool', () => {
  it('runs trace jobs concurrently in workers, streams progress, and each result matches an in-process trace', async () => {
    const payloads = new Map<number, RawAttributionGraph>();
    const { pool, store } = newPool({
      onResult: (job, out) => {
        payloads.set(job.id, (out.payload as { graph: RawAttributionGraph }).graph);
        return undefined;
      },
    });
    // the in-process reference (same settings) compiles the graphs into the shared cache first
    const model = openModel(FIX);
    const set = loadTranscoderSet(TC);
    const attributor = await Attributor.create(model, set, { cacheRoot });
    const progress = progressOf(pool);
    const states: string[] = [];
    pool.on('state', (r) => states.push(`${r.id}:${r.state}`));
    await pool.start();
    const [p0, p1] = FIXTURE_PROMPTS['tiny-gemma2'].cases;
    const a = await pool.submit('trace', traceParams(p0));
    const b = await pool.submit('trace', traceParams(p1));
    const [ra, rb] = await Promise.all([pool.wait(a.id), pool.wait(b.id)]);
    await pool.close();

    try {
      for (const [rec, ids] of [
        [ra, p0],
        [rb, p1],
      ] as const) {
        expect(rec.state, JSON.stringify(rec.error)).toBe('done');
        expect(rec.attempts).toBe(1);
        const ref = await attributor.attribute(ids, {
          maxNLogits: 10,
          desiredLogitProb: 0.95,
          batchSize: 64,
        });
        await ref.prepared.runner.release();
        const got = payloads.get(rec.id)!;
        expect(Array.from(got.nodes.features.index)).toEqual(Array.from(ref.graph.nodes.features.index));
        expect(got.adjacency.length).toBe(ref.graph.adjacency.length);
        let maxDiff = 0;
        let maxAbs = 0;
        for (let i = 0; i < got.adjacency.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(got.adjacency[i] - ref.graph.adjacency[i]));
          maxAbs = Math.max(maxAbs, Math.abs(ref.graph.adjacency[i]));
        }
        expect(maxDiff).toBeLessThanOrEqual(1e-5 * maxAbs);
        const result = rec.result as { tokens: number; featuresWithRows: number; pruned: { nodes: number } };
        expect(result.tokens).toBe(ids.length);
        expect(result.featuresWithRows).toBe(ref.graph.nodes.features.index.length);
        expect(result.pruned.nodes).toBeGreaterThan(0);
        // progress: the attribution phases, each with i/n, and an ETA during the feature batches
        const ev = progress.get(rec.id)!;
        const phases = new Set(ev.map((e) => e.phase));
        for (const ph of ['load', 'forward', 'logits', 'features', 'prune']) expect(phases).toContain(ph);
        for (const e of ev) expect(e.done).toBeLessThanOrEqual(e.total);
        // persisted: the SQLite row holds the last progress and the result
        const row = store.get(rec.id)!;
        expect(row.state).toBe('done');
        expect(row.progress?.phase).toBe('prune');
        expect((row.result as { tokens: number }).tokens).toBe(ids.length);
      }
      expect(states).toContain(`${a.id}:queued`);
      expect(states).toContain(`${a.id}:running`);
      expect(states).toContain(`${a.id}:done`);
    } finally {
      await attributor.close();
      set.close();
      model.close();
      store.close();
    }
  });

  it('cancels a running trace within a second, writing nothing, and keeps working', async () => {
    const { pool, store } = newPool();
    await pool.start();
    const outDir = fs.mkdtempSync(path.join(tmp, 'out-'));
    // One feature per batch on the demo model (CLT, 340 features): hundreds of batches, each a
    // cancellation point. (The tiny fixture's trace can end before the cancel's round trip.)
    const job = await pool.submit('trace', {
      model: DEMO,
      transcoders: path.join(DEMO, 'transcoders', 'clt'),
      prompt: 'The capital of state containing Dallas is',
      batchSize: 1,
      cacheRoot,
      out: path.join(outDir, 'graph.json'),
      raw: path.join(outDir, 'raw.safetensors'),
    });
    // The first 'features' event passes the progress throttle at once (a phase change); the
    // hundreds of one-target batches after it leave a wide window for the cancel to land.
    await whenProgress(pool, job.id, (p) => p.phase === 'features');
    const t0 = performance.now();
    expect(await pool.cancel(job.id)).toBe(true);
    const rec = await pool.wait(job.id);
    const took = performance.now() - t0;
    expect(rec.state).toBe('cancelled');
    expect(took).toBeLessThan(1000);
    expect(fs.readdirSync(outDir)).toEqual([]);
    expect(await pool.cancel(job.id)).toBe(false);
    // the same worker takes the next job
    const next = await pool.submit('sleep', { ms: 30 });
    expect((await pool.wait(next.id)).state).toBe('done');
    await pool.close();
    store.close();
  });

  it('refuses a trace whose out or raw path is a FIFO or a directory, before loading anything', async () => {
    const { pool, store } = newPool();
    await pool.start();
    const outDir = fs.mkdtempSync(path.join(tmp, 'out-'));
    const fifo = path.join(outDir, 'fifo');
    execSync(`mkfifo ${JSON.stringify(fifo)}`);
    for (const [flag, file, pattern] of [
      ['out', fifo, /--out .*fifo is a FIFO/],
      ['out', outDir, /is a directory/],
      ['raw', fifo, /--raw .*fifo is a FIFO/],
    ] as const) {
      const job = await pool.submit('trace', {
        model: path.join(tmp, 'no-such-model'),
        transcoders: path.join(tmp, 'no-such-transcoders'),
        prompt: 'The capital of Texas is',
        cacheRoot,
        [flag]: file,
      });
      const rec = await pool.wait(job.id);
      expect(rec.state).toBe('failed');
      expect(rec.error?.code).toBe('argument');
      expect(rec.error?.message).toMatch(pattern);
    }
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(outDir)).toEqual(['fifo']);
    await pool.close();
    store.close();
  });

  it('terminates a job that ignores the cancel after the grace period, and replaces its worker', async () => {
    const { pool, store } = newPool({ cancelGraceMs: 300 });
    const exits: (number | null)[] = [];
    pool.on('worker-exit', (e) => exits.push(e.jobId));
    await pool.start();
    const job = await pool.submit('sleep', { ms: 20_000, busy: true, ignoreCancel: true });
    await whenProgress(pool, job.id, (p) => p.done >= 1);
    const t0 = performance.now();
    await pool.cancel(job.id);
    const rec = await pool.wait(job.id);
    expect(rec.state).toBe('cancelled');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(exits).toContain(job.id);
    // a queued job is cancelled at once, without a worker
    const { pool: idle, store: idleStore } = newPool();
    const queued = await idle.submit('sleep', { ms: 10 });
    expect(await idle.cancel(queued.id)).toBe(true);
    expect(idleStore.get(queued.id)!.state).toBe('cancelled');
    await idle.close();
    idleStore.close();
    const next = await pool.submit('sleep', { ms: 20 });
    expect((await pool.wait(next.id)).state).toBe('done');
    await pool.close();
    store.close();
  });

  it('fails a job whose worker crashes (throw, uncaught, unhandled rejection, process.exit) and carries on', async () => {
    const { pool, store } = newPool();
    await pool.start();
    const cases: [string, RegExp, string][] = [
      ['throw', /deliberate failure/, 'internal'],
      ['uncaught', /crashed: deliberate uncaught exception/, 'crash'],
      ['reject', /crashed: deliberate unhandled rejection/, 'crash'],
      ['exit', /exited unexpectedly with code 7/, 'crash'],
    ];
    const jobs = await Promise.all(cases.map(([how]) => pool.submit('crash', { how })));
    const survivor = await pool.submit('sleep', { ms: 50, result: 'survived' });
    const recs = await Promise.all(jobs.map((j) => pool.wait(j.id)));
    recs.forEach((r, i) => {
      expect(r.state).toBe('failed');
      expect(r.error?.message).toMatch(cases[i][1]);
      expect(r.error?.code).toBe(cases[i][2]);
      expect(store.get(r.id)!.error?.message).toMatch(cases[i][1]);
    });
    const s = await pool.wait(survivor.id);
    expect(s.state).toBe('done');
    expect(s.result).toBe('survived');
    await pool.close();
    expect(pool.workerCount()).toBe(0);
    store.close();
  });

  it('fails a job that exceeds the worker heap limit as out of memory', async () => {
    const { pool, store } = newPool({
      slots: { cpu: 1 },
      resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
    });
    await pool.start();
    const job = await pool.submit('crash', { how: 'oom' });
    const after = await pool.submit('sleep', { ms: 20 });
    const rec = await pool.wait(job.id);
    expect(rec.state).toBe('failed');
    expect(rec.error?.code).toBe('oom');
    expect(rec.error?.message).toMatch(/out of memory \(worker heap limit 48 MB\)/);
    expect((await pool.wait(after.id)).state).toBe('done');
    await pool.close();
    store.close();
  });

  it('marks running jobs interrupted at shutdown, keeps queued ones, and resumes them after a restart', async () => {
    const libraryDir = path.join(tmp, 'restart-library');
    const first = newPool({ libraryDir, slots: { cpu: 1 } });
    await first.pool.start();
    const long = await first.pool.submit('sleep', { ms: 10_000 });
    const waiting = await first.pool.submit('sleep', { ms: 20, result: 'ran after restart' });
    await whenProgress(first.pool, long.id, (p) => p.done >= 1);
    const t0 = performance.now();
    await first.pool.close();
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(first.store.get(long.id)!.state).toBe('interrupted');
    expect(first.store.get(waiting.id)!.state).toBe('queued');
    // a job left 'running' by a process that died (no clean shutdown)
    const orphan = first.store.enqueue({ kind: 'sleep', device: 'cpu', params: { ms: 10 } });
    first.store.db.prepare("UPDATE jobs SET state = 'running', attempts = 1 WHERE id = ?").run(orphan.id);
    expect(first.store.get(orphan.id)!.state).toBe('running');
    first.store.close();

    const second = newPool({ libraryDir, slots: { cpu: 1 } });
    const interrupted = await second.pool.start();
    expect(interrupted.map((j) => j.id).sort()).toEqual([long.id, orphan.id].sort());
    const w = await second.pool.wait(waiting.id);
    expect(w.state).toBe('done');
    expect(w.result).toBe('ran after restart');
    // shorten the rest of the long job, then resume it
    second.store.db
      .prepare('UPDATE jobs SET params = ? WHERE id = ?')
      .run(JSON.stringify({ ms: 20 }), long.id);
    expect(await second.pool.requeue(long.id, { resume: true })).toBe(true);
    const resumed: JobRecord = await second.pool.wait(long.id);
    expect(resumed.state).toBe('done');
    expect(resumed.result).toMatchObject({ resume: true, attempt: 2 });
    expect(await second.pool.requeue(orphan.id, { resume: false })).toBe(true);
    expect((await second.pool.wait(orphan.id)).result).toMatchObject({ resume: false });
    await second.pool.close();
    second.store.close();
  });

  it('re-prunes a raw graph given as a transient input', async () => {
    let graph: RawAttributionGraph | undefined;
    const { pool, store } = newPool({
      onResult: (_job, out) => {
        const p = out.payload as { graph?: RawAttributionGraph };
        if (p.graph) graph = p.graph;
        return undefined;
      },
    });
    await pool.start();
    const t = await pool.submit('trace', traceParams(FIXTURE_PROMPTS['tiny-gemma2'].cases[1]));
    expect((await pool.wait(t.id)).state).toBe('done');
    const copy = graph!.adjacency.slice();
    const r = await pool.submit(
      'reprune',
      { nodeThreshold: 0.5, edgeThreshold: 0.9 },
      { inputs: { graph: { ...graph!, adjacency: copy } }, transfer: [copy.buffer] },
    );
    const rec = await pool.wait(r.id);
    expect(rec.state, JSON.stringify(rec.error)).toBe('done');
    const res = rec.result as { nodes: number; nodeThreshold: number };
    expect(res.nodeThreshold).toBe(0.5);
    expect(res.nodes).toBeGreaterThan(0);
    expect(copy.byteLength).toBe(0); // moved, not copied
    await pool.close();
    store.close();
  });
});
