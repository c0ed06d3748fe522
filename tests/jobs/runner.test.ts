/**
 * The worker runner with real worker threads (tsx-loaded TypeScript): trace jobs on the tiny
 * fixtures, progress, cancel (cooperative, during long native runs, and by terminate, never
 * inside native code), crashes of every kind, waiting for a free worker, warm reuse and
 * retirement, and moved results.
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Attributor } from '../../electron/engine/attribution/attribute.ts';
import { DEFAULT_TRACE_SETTINGS } from '../../electron/engine/attribution/defaults.ts';
import type { RawAttributionGraph } from '../../electron/engine/attribution/graph-types.ts';
import { openModel } from '../../electron/engine/model/open-model.ts';
import { settledProvider } from '../../electron/engine/runtime/auto-provider.ts';
import { loadTranscoderSet } from '../../electron/engine/transcoders/load.ts';
import { deviceForProvider, settleJobDevice } from '../../electron/jobs/kinds/index.ts';
import { type RunnerOptions, type RunOutput, WorkerRunner } from '../../electron/jobs/runner.ts';
import type { JobProgress, JsonValue } from '../../electron/jobs/types.ts';
import { FIXTURE_PROMPTS } from '../fixtures/prompts.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';

const FIX = fixturePath('tiny-gemma2');
const TC = path.join(FIX, 'transcoders', 'plt');
const DEMO = path.resolve(import.meta.dirname, '../../resources/models/gemma2-demo');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-jobs-'));
const cacheRoot = path.join(tmp, 'cache');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TEST_KINDS = [
  { kind: 'sleep', module: new URL('./kinds/sleep.ts', import.meta.url).href },
  { kind: 'crash', module: new URL('./kinds/crash.ts', import.meta.url).href },
  { kind: 'native', module: new URL('./kinds/native.ts', import.meta.url).href },
];

function newRunner(opts: RunnerOptions = {}) {
  const runner = new WorkerRunner({ slots: { cpu: 2 }, cancelGraceMs: 400, ...opts });
  for (const k of TEST_KINDS) runner.registerKind(k);
  return runner;
}

/** The error a run rejects with (fails the test when it resolves). */
async function failure(run: Promise<RunOutput>): Promise<Error & { code?: string }> {
  return run.then(
    (out) => {
      throw new Error(`expected the job to fail; it gave ${JSON.stringify(out.result)}`);
    },
    (e: Error & { code?: string }) => e,
  );
}

/** The worker thread a sleep or native job ran on. */
const threadOf = (o: RunOutput) => (o.result as { threadId: number }).threadId;

/**
 * Starts a `native` job and cancels it as its second run starts; `at` then holds when, and how
 * long the first run took.
 */
function cancelAtSecondRun(runner: WorkerRunner, params: JsonValue) {
  const controller = new AbortController();
  const at = { abortAt: 0, runMs: 0 };
  const job = runner.run('native', params, {
    signal: controller.signal,
    onProgress: (p) => {
      if (p.done === 1 && !at.abortAt) {
        at.runMs = (p.detail as { runMs: number }).runMs;
        at.abortAt = performance.now();
        controller.abort();
      }
    },
  });
  return { job, at };
}

/** Waits until `ok()` holds (polled), failing after `ms`. */
async function until(ok: () => boolean, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const settings = (batchSize: number) => ({ ...DEFAULT_TRACE_SETTINGS, batchSize });

const traceParams = (tokenIds: number[]): JsonValue => ({
  model: FIX,
  transcoders: TC,
  input: { tokenIds },
  settings: settings(64),
  cacheRoot,
});

describe('worker runner', () => {
  it('runs trace jobs concurrently in workers, forwards progress, and each result matches an in-process trace', async () => {
    // the in-process reference (same settings) compiles the graphs into the shared cache first
    const model = openModel(FIX);
    const set = loadTranscoderSet(TC);
    const attributor = await Attributor.create(model, set, { cacheRoot });
    const runner = newRunner();
    const progress = new Map<number, JobProgress[]>();
    const [p0, p1] = FIXTURE_PROMPTS['tiny-gemma2'].cases;
    const run = (i: number, ids: number[]) => {
      progress.set(i, []);
      return runner.run('trace', traceParams(ids), { onProgress: (p) => progress.get(i)!.push(p) });
    };
    const outs = await Promise.all([run(0, p0), run(1, p1)]);
    await runner.close();

    try {
      for (const [i, ids] of [p0, p1].entries()) {
        const ref = await attributor.attribute(ids, {
          maxNLogits: 10,
          desiredLogitProb: 0.95,
          batchSize: 64,
        });
        await ref.prepared.runner.release();
        const got = (outs[i].payload as { graph: RawAttributionGraph }).graph;
        expect(Array.from(got.nodes.features.index)).toEqual(Array.from(ref.graph.nodes.features.index));
        expect(got.adjacency.length).toBe(ref.graph.adjacency.length);
        let maxDiff = 0;
        let maxAbs = 0;
        for (let j = 0; j < got.adjacency.length; j++) {
          maxDiff = Math.max(maxDiff, Math.abs(got.adjacency[j] - ref.graph.adjacency[j]));
          maxAbs = Math.max(maxAbs, Math.abs(ref.graph.adjacency[j]));
        }
        expect(maxDiff).toBeLessThanOrEqual(1e-5 * maxAbs);
        const result = outs[i].result as {
          tokens: number;
          featuresWithRows: number;
          pruned: { nodes: number };
        };
        expect(result.tokens).toBe(ids.length);
        expect(result.featuresWithRows).toBe(ref.graph.nodes.features.index.length);
        expect(result.pruned.nodes).toBeGreaterThan(0);
        // progress: the attribution phases, each with i/n, and an ETA during the feature batches
        const ev = progress.get(i)!;
        const phases = new Set(ev.map((e) => e.phase));
        for (const ph of ['load', 'forward', 'logits', 'features', 'prune']) expect(phases).toContain(ph);
        for (const e of ev) expect(e.done).toBeLessThanOrEqual(e.total);
      }
    } finally {
      await attributor.close();
      set.close();
      model.close();
    }
  });

  it('cancels a running trace within a second, writing nothing, and the warm worker takes the next job', async () => {
    const runner = newRunner({ slots: { cpu: 1 } });
    const first = await runner.run('sleep', { ms: 10 });
    const outDir = fs.mkdtempSync(path.join(tmp, 'out-'));
    const controller = new AbortController();
    let t0 = 0;
    // One feature per batch on the demo model (CLT, 340 features): hundreds of batches, each a
    // cancellation point. (The tiny fixture's trace can end before the cancel's round trip.)
    const trace = runner.run(
      'trace',
      {
        model: DEMO,
        transcoders: path.join(DEMO, 'transcoders', 'clt'),
        input: { prompt: 'The capital of state containing Dallas is' },
        settings: settings(1),
        cacheRoot,
        out: path.join(outDir, 'graph.json'),
        raw: path.join(outDir, 'raw.safetensors'),
      },
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'features' && !t0) {
            t0 = performance.now();
            controller.abort();
          }
        },
      },
    );
    const e = await failure(trace);
    expect(e.code).toBe('cancelled');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(fs.readdirSync(outDir)).toEqual([]);
    // the same warm worker takes the next job
    expect(threadOf(await runner.run('sleep', { ms: 30 }))).toBe(threadOf(first));
    expect(runner.workerCount()).toBe(1);
    await runner.close();
  });

  it('refuses a trace whose out or raw path is a FIFO or a directory, before loading anything', async () => {
    const runner = newRunner();
    const outDir = fs.mkdtempSync(path.join(tmp, 'out-'));
    const fifo = path.join(outDir, 'fifo');
    execSync(`mkfifo ${JSON.stringify(fifo)}`);
    for (const [flag, file, pattern] of [
      ['out', fifo, /--out .*fifo is a FIFO/],
      ['out', outDir, /is a directory/],
      ['raw', fifo, /--raw .*fifo is a FIFO/],
    ] as const) {
      const e = await failure(
        runner.run('trace', {
          model: path.join(tmp, 'no-such-model'),
          transcoders: path.join(tmp, 'no-such-transcoders'),
          input: { prompt: 'The capital of Texas is' },
          settings: settings(64),
          cacheRoot,
          [flag]: file,
        }),
      );
      expect(e.code).toBe('argument');
      expect(e.message).toMatch(pattern);
    }
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.readdirSync(outDir)).toEqual(['fifo']);
    await runner.close();
  });

  it('terminates a job that ignores the cancel after the drain period, and replaces its worker', async () => {
    const runner = newRunner({ slots: { cpu: 1 }, cancelGraceMs: 300, cancelDrainMs: 300 });
    const controller = new AbortController();
    let t0 = 0;
    const stuck = runner.run(
      'sleep',
      { ms: 20_000, busy: true, ignoreCancel: true },
      {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.done >= 1 && !t0) {
            t0 = performance.now();
            controller.abort();
          }
        },
      },
    );
    // a caller waiting for the busy worker is refused at once when its signal aborts
    const waiting = new AbortController();
    const queued = runner.run('sleep', { ms: 10 }, { signal: waiting.signal });
    waiting.abort();
    expect((await failure(queued)).code).toBe('cancelled');
    const e = await failure(stuck);
    expect(e.code).toBe('cancelled');
    expect(performance.now() - t0).toBeLessThan(1000);
    await until(() => runner.workerCount() === 0, 5000);
    const next = await runner.run('sleep', { ms: 20 });
    expect(next.result).toMatchObject({ slept: 20 });
    expect(runner.workerCount()).toBe(1);
    await runner.close();
  });

  it('tells the caller of a cancel at once while a long native run ends, then keeps the worker warm', async () => {
    const runner = newRunner({ slots: { cpu: 1 }, cancelGraceMs: 300 });
    const first = await runner.run('sleep', { ms: 10 });
    // Each run is one ONNX Runtime call of ~2 s, during which the worker cannot see the cancel:
    // as a backward run of gemma-2-2b on a CPU.
    const { job, at } = cancelAtSecondRun(runner, { runs: 3, seconds: 2 });
    const e = await failure(job);
    const { abortAt, runMs } = at;
    const toldAfter = performance.now() - abortAt;
    expect(e.code).toBe('cancelled');
    expect(runMs).toBeGreaterThan(1000); // the premise: a run outlasts the grace period
    expect(toldAfter).toBeLessThan(Math.min(1000, runMs));
    // The worker stops after the run (the job sees the cancel then), and takes the next job warm.
    expect(threadOf(await runner.run('sleep', { ms: 10 }))).toBe(threadOf(first));
    expect(runner.workerCount()).toBe(1);
    await runner.close();
  });

  it('terminates a job that ignores the cancel only outside native code, and the process lives on', async () => {
    // Terminating a worker inside an ONNX Runtime call aborts the whole process (the desktop
    // app with it): the drain period here ends inside a run, and the runner waits for it.
    const runner = newRunner({ slots: { cpu: 1 }, cancelGraceMs: 200, cancelDrainMs: 200 });
    const first = await runner.run('sleep', { ms: 10 });
    const { job, at } = cancelAtSecondRun(runner, { runs: 4, seconds: 2, ignoreCancel: true });
    expect((await failure(job)).code).toBe('cancelled');
    const { abortAt, runMs } = at;
    expect(performance.now() - abortAt).toBeLessThan(1000);
    expect(runMs).toBeGreaterThan(1000);
    await until(() => runner.workerCount() === 0, 30_000);
    // not terminated when the drain period ended (~400 ms in), but once that run had returned,
    // before the job could start the next (it would have run 2 more)
    const exitAfter = performance.now() - abortAt;
    expect(exitAfter).toBeGreaterThan(0.5 * runMs);
    expect(exitAfter).toBeLessThan(2 * runMs);
    expect(threadOf(await runner.run('sleep', { ms: 10 }))).not.toBe(threadOf(first));
    await runner.close();
  });

  it('fails a job whose worker crashes (throw, uncaught, unhandled rejection, process.exit) and carries on', async () => {
    const runner = newRunner();
    const cases: [string, RegExp, string][] = [
      ['throw', /deliberate failure/, 'internal'],
      ['uncaught', /crashed: deliberate uncaught exception/, 'crash'],
      ['reject', /crashed: deliberate unhandled rejection/, 'crash'],
      ['exit', /exited unexpectedly with code 7/, 'crash'],
    ];
    const runs = cases.map(([how]) => failure(runner.run('crash', { how })));
    const survivor = runner.run('sleep', { ms: 50, result: 'survived' });
    const errors = await Promise.all(runs);
    errors.forEach((e, i) => {
      expect(e.message).toMatch(cases[i][1]);
      expect(e.code).toBe(cases[i][2]);
    });
    expect((await survivor).result).toBe('survived');
    await runner.close();
    expect(runner.workerCount()).toBe(0);
  });

  it('fails a job that exceeds the worker heap limit as out of memory', async () => {
    const runner = newRunner({
      slots: { cpu: 1 },
      resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
    });
    const oom = failure(runner.run('crash', { how: 'oom' }));
    const after = runner.run('sleep', { ms: 20 });
    const e = await oom;
    expect(e.code).toBe('oom');
    expect(e.message).toMatch(/out of memory \(worker heap limit 48 MB\)/);
    expect((await after).result).toMatchObject({ slept: 20 });
    await runner.close();
  });

  it('runs one job per worker: a caller waits for a free one, and idle workers are retired', async () => {
    const runner = newRunner({ slots: { cpu: 1 }, idleWorkerMs: 100 });
    const order: string[] = [];
    const a = runner.run('sleep', { ms: 150 }).then((o) => {
      order.push('a');
      return o;
    });
    const b = runner.run('sleep', { ms: 10 }, { onProgress: () => order.push('b running') }).then((o) => {
      order.push('b');
      return o;
    });
    const [ra, rb] = await Promise.all([a, b]);
    expect(order[0]).toBe('a'); // b, shorter, started only once a had ended
    expect((ra.result as { threadId: number }).threadId).toBe((rb.result as { threadId: number }).threadId);
    expect(runner.workerCount('cpu')).toBe(1);
    const t0 = performance.now();
    while (runner.workerCount() > 0 && performance.now() - t0 < 5000)
      await new Promise((r) => setTimeout(r, 20));
    expect(runner.workerCount()).toBe(0);
    await runner.close();
    await expect(runner.run('sleep', { ms: 1 })).rejects.toThrow(/closed/);
  });

  it('tells workers started after auto was settled which provider auto chose, and schedules auto jobs by it', async () => {
    expect(process.env.CIRCUIT_AUTO_PROVIDER).toBeUndefined();
    const runner = newRunner({ slots: { cpu: 1 }, idleWorkerMs: 50 });
    const before = await runner.run('sleep', { ms: 1 });
    expect((before.result as { autoProvider: string | null }).autoProvider).toBeNull(); // not settled yet
    while (runner.workerCount() > 0) await new Promise((r) => setTimeout(r, 20));
    // The probe (here WebGPU is SwiftShader or absent, so the CPU wins; a real GPU may win elsewhere).
    const device = await settleJobDevice('auto');
    const chosen = settledProvider('auto');
    expect(chosen).toBeDefined();
    expect(device).toBe(chosen === 'cpu' ? 'cpu' : 'gpu');
    expect(deviceForProvider({ settings: { provider: 'auto' } })).toBe(device);
    const after = await runner.run('sleep', { ms: 1 });
    expect((after.result as { autoProvider: string | null }).autoProvider).toBe(chosen);
    expect(process.env.CIRCUIT_AUTO_PROVIDER).toBeUndefined(); // this process's environment is untouched
    await runner.close();
  });

  it('schedules a pinned auto by its pin: a GPU slot for a GPU provider', async () => {
    vi.stubEnv('CIRCUIT_AUTO_PROVIDER', 'webgpu');
    try {
      expect(deviceForProvider({ provider: 'auto' })).toBe('gpu');
      expect(await settleJobDevice('auto')).toBe('gpu');
      expect(await settleJobDevice('webgpu')).toBe('gpu');
      expect(await settleJobDevice('none')).toBe('cpu');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('re-prunes a raw graph given as a transient input, moved to the worker', async () => {
    const runner = newRunner();
    const traced = await runner.run('trace', traceParams(FIXTURE_PROMPTS['tiny-gemma2'].cases[1]));
    const graph = (traced.payload as { graph: RawAttributionGraph }).graph;
    const copy = graph.adjacency.slice();
    const out = await runner.run(
      'reprune',
      { nodeThreshold: 0.5, edgeThreshold: 0.9 },
      { inputs: { graph: { ...graph, adjacency: copy } }, transfer: [copy.buffer] },
    );
    const res = out.result as { nodes: number; nodeThreshold: number };
    expect(res.nodeThreshold).toBe(0.5);
    expect(res.nodes).toBeGreaterThan(0);
    expect(copy.byteLength).toBe(0); // moved, not copied
    await runner.close();
  });
});
