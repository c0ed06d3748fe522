/**
 * Where the engine's backward time goes, two ways:
 *
 * - `installRowsProbe()`: wraps `LinearModelRunner.prototype.rows` and the `run` of ONNX
 *   Runtime sessions (only while a `rows` call is in flight) with clocks, so every backward
 *   batch of a real trace reports its size, its position count t, and the split of its wall
 *   time into feed building (TS), `session.run` and the scatter of the outputs into rows (TS),
 *   with the process's CPU time and minor page faults over the call (load-independent
 *   signals on a busy machine). A few clock reads per batch: no measurable cost.
 * - `summarizeOrtProfile()`: reads an ONNX Runtime profile (session option
 *   `enableProfiling`) and sums kernel time by kind of node (matrix products told apart by
 *   their shapes, the rest by op type and shape), after warm-up runs, taking per node and
 *   batch the fastest of the repeated runs.
 */
import fs from 'node:fs';
import { backwardTop } from '../electron/engine/attribution/linear-model.ts';
import { LinearModelRunner } from '../electron/engine/attribution/linear-runner.ts';
import type { Target } from '../electron/engine/attribution/targets.ts';
import { ort } from '../electron/engine/runtime/session.ts';
import { nodeMatmulFlops } from './trace-flops.ts';

export interface RowsCall {
  B: number;
  t: number;
  /** The backward graph's top layer (nLayers when the batch has a logit target). */
  top: number;
  /** The targets' injection slots when the runner computes live rows only (trace-flops.ts). */
  slots?: number[];
  /** The targets' positions when the projections run on live positions only (trace-flops.ts). */
  positions?: number[];
  totalMs: number;
  /** From entering rows() to session.run: feeds (pattern slices, read vectors, tensors). */
  feedsMs: number;
  runMs: number;
  /** From session.run's return to rows()'s: scattering [t, B, n] outputs into rows. */
  scatterMs: number;
  /** CPU time of the whole process during the call (all threads; spinning included). */
  userMs: number;
  systemMs: number;
  /** Minor page faults during the call (first touches of fresh memory). */
  pageFaults: number;
}

interface InFlight {
  start: number;
  runStart: number;
  runEnd: number;
  runMs: number;
  /** Whether its runs were fed live pairs (the graph's projections ran on live positions only). */
  livePositions: boolean;
}

type RowsFn = (this: LinearModelRunner, targets: readonly Target[]) => Promise<Float32Array[]>;
type RunFn = (this: ort.InferenceSession, ...args: unknown[]) => Promise<unknown>;

export interface RowsProbe {
  /** Calls since the last `take()`, in order. */
  take(): RowsCall[];
  uninstall(): void;
}

export function installRowsProbe(): RowsProbe {
  const runnerProto = LinearModelRunner.prototype as unknown as { rows: RowsFn };
  // InferenceSession's value is its implementation class (typed as a factory interface).
  const sessionProto = (ort.InferenceSession as unknown as { prototype: { run: RunFn } }).prototype;
  const rows = runnerProto.rows;
  const run = sessionProto.run;
  let calls: RowsCall[] = [];
  let current: InFlight | null = null;

  runnerProto.rows = async function (this: LinearModelRunner, targets: readonly Target[]) {
    const t = Math.max(...targets.map((x) => x.position)) + 1;
    // The runner's (private) config; without it, slots 2l / 2l + 1 / 2L still give the top.
    const nLayers =
      (this as unknown as { cfg?: { nLayers?: number } }).cfg?.nLayers ?? Number.MAX_SAFE_INTEGER;
    const top = backwardTop(
      targets.map((x) => x.slot),
      nLayers,
    );
    const live = this.liveRows;
    const ru = process.resourceUsage();
    const rec: InFlight = {
      start: performance.now(),
      runStart: Number.NaN,
      runEnd: Number.NaN,
      runMs: 0,
      livePositions: false,
    };
    current = rec;
    try {
      return await rows.call(this, targets);
    } finally {
      const end = performance.now();
      const ru1 = process.resourceUsage();
      current = null;
      calls.push({
        B: targets.length,
        t,
        top,
        slots: live ? targets.map((x) => x.slot) : undefined,
        positions: rec.livePositions ? targets.map((x) => x.position) : undefined,
        totalMs: end - rec.start,
        feedsMs: rec.runStart - rec.start,
        runMs: rec.runMs,
        scatterMs: end - rec.runEnd,
        userMs: (ru1.userCPUTime - ru.userCPUTime) / 1000,
        systemMs: (ru1.systemCPUTime - ru.systemCPUTime) / 1000,
        pageFaults: ru1.minorPageFault - ru.minorPageFault,
      });
    }
  };
  sessionProto.run = async function (this: ort.InferenceSession, ...args: unknown[]) {
    const rec = current;
    if (!rec) return run.apply(this, args);
    const t0 = performance.now();
    if (Number.isNaN(rec.runStart)) rec.runStart = t0;
    // The graph asks for live pairs where it runs on live positions (linear-model.ts).
    if ((args[0] as Record<string, unknown>).live_pair_counts !== undefined) rec.livePositions = true;
    try {
      return await run.apply(this, args);
    } finally {
      rec.runEnd = performance.now();
      rec.runMs += rec.runEnd - t0;
    }
  };
  return {
    take() {
      const out = calls;
      calls = [];
      return out;
    },
    uninstall() {
      runnerProto.rows = rows;
      sessionProto.run = run;
    },
  };
}

// ---------------------------------------------------------------------------------------

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}

export interface ProfileCategory {
  name: string;
  ms: number;
  nodes: number;
  /** Matrix-product FLOPs of these nodes (0 for elementwise/layout ops). */
  flops: number;
}

export interface ProfileSummary {
  runs: number;
  /** Sum of model_run durations (the runs kept). */
  runMs: number;
  /** Sum of kernel times (the runs kept). */
  kernelMs: number;
  categories: ProfileCategory[];
  /** The slowest single nodes (all kept runs together; shapes: of its slowest run). */
  topNodes: { name: string; op: string; ms: number; runs: number; shapes: string; gflops: number }[];
}

const shapesOf = (xs: Record<string, number[]>[] | undefined): number[][] =>
  (xs ?? []).map((x) => Object.values(x)[0] ?? []);

/** A readable kind for one kernel: matrix products by shape, the rest by op type and shape. */
function categoryOf(op: string, inputs: number[][], output: number[] | undefined): string {
  const [a, b] = inputs;
  if (op === 'Gemm' || op === 'FusedGemm') return 'Gemm: O/V projections';
  if (op === 'MatMul' || op === 'FusedMatMul') {
    if (output && output.length === 4) return 'MatMul: frozen pattern (attention)';
    if (!b || b.length === 2) return 'MatMul: W_skip';
    if (a && a.length === 3 && b.length === 3) return 'MatMul: source contraction [t,B,d]·[t,d,n]';
    return `${op} (other)`;
  }
  if (op === 'Mul' && a && b) {
    if (a.length === 3 && b.length === 3 && a[2] === 1 && b[1] === 1)
      return 'Mul: injection one-hot × vectors → [B,t,d]';
    if (a.length === 2 && b.length === 2) return 'Mul: injection slot mask [B,d]';
    if (b.length === 1) return 'Mul: frozen norm gain [t,B,d]';
    if (b.length === 3 && b[1] === 1 && b[2] === 1) return 'Mul: frozen norm scale [t,B,d]';
    if (b.length === 3 && b[1] === 1) return 'Mul: token contraction [t,B,d]';
  }
  if (op === 'Add') return 'Add: residual + injections [t,B,d]';
  if (op === 'Mul' || op === 'Sub' || op === 'Div') return `${op} (other)`;
  if (op === 'Transpose') return 'Transpose (copies)';
  if (op === 'ReduceSum' || op === 'ReduceMean') return 'ReduceSum (GQA groups, token dot)';
  if (op === 'Equal' || op === 'Cast' || op === 'Where') return 'Equal/Cast (injection masks)';
  return 'other (Reshape, Shape, Unsqueeze, …)';
}

/**
 * `skipRuns` runs are warm-up; the rest repeat one sequence of `sequenceLength` runs (run r
 * is batch r mod sequenceLength). Per node and batch the fastest repeat counts, which keeps
 * the figures meaningful on a loaded machine; `runs`/`runMs` are per sequence likewise.
 */
export function summarizeOrtProfile(file: string, skipRuns: number, sequenceLength: number): ProfileSummary {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as ProfileEvent[];
  const runs = events
    .filter((e) => e.cat === 'Session' && e.name === 'model_run')
    .sort((a, b) => a.ts - b.ts)
    .slice(skipRuns);
  const runOf = (ts: number) => runs.findIndex((r) => ts >= r.ts && ts <= r.ts + r.dur);
  const minRun = new Map<number, number>();
  runs.forEach((r, i) => {
    const k = i % sequenceLength;
    minRun.set(k, Math.min(minRun.get(k) ?? Number.POSITIVE_INFINITY, r.dur / 1000));
  });
  // fastest kernel time per (node, batch)
  const best = new Map<
    string,
    { node: string; op: string; ms: number; inputs: number[][]; output?: number[] }
  >();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const r = runOf(e.ts);
    if (r < 0) continue;
    const node = e.name.replace(/_kernel_time$/, '').replace(/\/$/, '');
    const key = `${node}#${r % sequenceLength}`;
    const ms = e.dur / 1000;
    const prev = best.get(key);
    if (prev && prev.ms <= ms) continue;
    best.set(key, {
      node,
      op: e.args?.op_name ?? '?',
      ms,
      inputs: shapesOf(e.args?.input_type_shape),
      output: shapesOf(e.args?.output_type_shape)[0],
    });
  }
  const categories = new Map<string, ProfileCategory>();
  const nodes = new Map<
    string,
    { op: string; ms: number; runs: number; maxMs: number; shapes: string; flops: number }
  >();
  let kernelMs = 0;
  for (const b of best.values()) {
    const flops = nodeMatmulFlops(b.op, b.inputs, b.output);
    kernelMs += b.ms;
    const name = categoryOf(b.op, b.inputs, b.output);
    const c = categories.get(name) ?? { name, ms: 0, nodes: 0, flops: 0 };
    c.ms += b.ms;
    c.nodes++;
    c.flops += flops;
    categories.set(name, c);
    const n = nodes.get(b.node) ?? { op: b.op, ms: 0, runs: 0, maxMs: 0, shapes: '', flops: 0 };
    n.ms += b.ms;
    n.runs++;
    n.flops += flops;
    if (b.ms >= n.maxMs) {
      n.maxMs = b.ms;
      n.shapes = `${b.inputs.map((s) => `[${s}]`).join('·')} → [${b.output ?? ''}]`;
    }
    nodes.set(b.node, n);
  }
  return {
    runs: minRun.size,
    runMs: [...minRun.values()].reduce((s, x) => s + x, 0),
    kernelMs,
    categories: [...categories.values()].sort((a, b) => b.ms - a.ms),
    topNodes: [...nodes.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 8)
      .map(([name, n]) => ({
        name,
        op: n.op,
        ms: n.ms,
        runs: n.runs,
        shapes: n.shapes,
        gflops: n.ms > 0 ? n.flops / (n.ms * 1e6) : 0,
      })),
  };
}
