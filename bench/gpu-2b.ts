/**
 * gpu-check's gemma-2-2b part (`--synthetic 2b`): one attribution of the issue's shape
 * (gemma-2-2b, 26 per-layer transcoders of 16384 features, 11 tokens, 8192 feature rows,
 * batch 256) per provider, in this process, with
 *
 * - per-phase times of a warm trace (sessions made and weights on the device beforehand),
 * - the backward's matrix-product FLOPs (trace-flops.ts, over the batches actually run) over
 *   the logits + features phases and over `session.run` alone, as TFLOP/s and as a share of
 *   the same provider's MatMul rate measured here (device-resident operands),
 * - the device memory held (weights, per-t constants) and the batch shape,
 * - the graph's difference from the other providers' dumps in `--dump DIR` (each run writes
 *   its adjacency and node keys there): the largest |Δ| of each row relative to that row's
 *   largest entry, over the nodes both graphs hold, and the pruned node sets (0.8 / 0.98).
 *
 * Each provider can run in its own process (`--providers webgpu`, then `--providers cpu`
 * with the same --dump), so a GPU failure leaves the CPU figures, and the CPU reference need
 * not be recomputed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type AttributionResult,
  type AttributionSettings,
  Attributor,
} from '../electron/engine/attribution/attribute.ts';
import type { RawAttributionGraph } from '../electron/engine/attribution/graph-types.ts';
import { openModel } from '../electron/engine/model/open-model.ts';
import { pruneGraph } from '../electron/engine/pruning/index.ts';
import type { ProviderName } from '../electron/engine/runtime/providers.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';
import { measureDeviceGemm, measureGemm } from './gemm.ts';
import { formatGpuProfile, summarizeGpuProfiles } from './gpu-profile.ts';
import { ensureSyntheticGemma2, GEMMA2_2B, withLayers } from './synthetic-gemma2.ts';
import { type BackwardShape, sumFlops } from './trace-flops.ts';
import { installRowsProbe, type RowsCall, type RowsProbe } from './trace-profile.ts';

export interface Gpu2bOptions {
  providers: ProviderName[];
  cacheDir: string;
  tokens: number;
  layers: number;
  maxFeatureNodes: number;
  batchSize: number;
  repeat: number;
  dump: string | null;
  /** Profile every session into this folder (profiling slows the runs: a separate process). */
  profile: string | null;
  /** Leave out the MatMul rates (and so the backward's share of them). */
  skipRates: boolean;
  /** Backward variants timed after the main traces, on the same opened model (see parseVariants). */
  variants: BackwardVariant[];
  log: (msg: string) => void;
}

/** Node keys in raw order: features by (layer, position, index), the rest by kind and slot. */
function nodeKeys(g: RawAttributionGraph): string[] {
  const f = g.nodes.features;
  const keys = Array.from(f.layer, (l, i) => `f${l}/${f.position[i]}/${f.index[i]}`);
  for (let i = 0; i < g.nodes.nLayers * g.nodes.nPositions; i++) keys.push(`e${i}`);
  for (let p = 0; p < g.nodes.nPositions; p++) keys.push(`t${p}`);
  for (const id of g.nodes.logits.tokenId) keys.push(`l${id}`);
  return keys;
}

interface Dump {
  keys: string[];
  adjacency: Float32Array;
  kept: string[];
}

function writeDump(dir: string, provider: string, g: RawAttributionGraph, kept: string[]): void {
  fs.mkdirSync(dir, { recursive: true });
  const a = g.adjacency;
  fs.writeFileSync(path.join(dir, `${provider}.f32`), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  fs.writeFileSync(path.join(dir, `${provider}.json`), JSON.stringify({ keys: nodeKeys(g), kept }));
}

function readDump(dir: string, provider: string): Dump | null {
  const json = path.join(dir, `${provider}.json`);
  if (!fs.existsSync(json)) return null;
  const { keys, kept } = JSON.parse(fs.readFileSync(json, 'utf8')) as { keys: string[]; kept: string[] };
  const bytes = fs.readFileSync(path.join(dir, `${provider}.f32`));
  const adjacency = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { keys, adjacency, kept };
}

/** Largest |a − b| of each row relative to the row's largest |b|, over the nodes both hold. */
function compareDumps(a: Dump, b: Dump) {
  const ib = new Map(b.keys.map((k, i) => [k, i]));
  const common: [number, number][] = [];
  for (const [i, k] of a.keys.entries()) {
    const j = ib.get(k);
    if (j !== undefined) common.push([i, j]);
  }
  const Na = a.keys.length;
  const Nb = b.keys.length;
  let worst = 0;
  for (const [ra, rb] of common) {
    let scale = 0;
    let diff = 0;
    for (const [ca, cb] of common) {
      const vb = b.adjacency[rb * Nb + cb];
      scale = Math.max(scale, Math.abs(vb));
      diff = Math.max(diff, Math.abs(a.adjacency[ra * Na + ca] - vb));
    }
    if (scale > 0) worst = Math.max(worst, diff / scale);
  }
  const keptB = new Set(b.kept);
  const both = a.kept.filter((k) => keptB.has(k)).length;
  return {
    commonNodes: common.length,
    nodesA: Na,
    nodesB: Nb,
    rowRelativeDiff: worst,
    prunedA: a.kept.length,
    prunedB: b.kept.length,
    prunedBoth: both,
    prunedSame: both === a.kept.length && both === b.kept.length,
  };
}

/** A backward variant: environment knobs (read when backward sessions are made) and/or a batch size. */
export interface BackwardVariant {
  name: string;
  env: Record<string, string>;
  batchSize?: number;
}

/**
 * `name:KEY=V,KEY=V;name2:…` → variants. `batch=N` sets the batch size; any other key is an
 * environment variable, e.g. `per-t:CIRCUIT_BACKWARD_CONSTANTS=per-t;b1024:batch=1024`.
 */
export function parseVariants(spec: string): BackwardVariant[] {
  return spec
    .split(';')
    .filter((x) => x.trim())
    .map((item) => {
      const colon = item.indexOf(':');
      if (colon <= 0) throw new Error(`--variants: "${item}" is not name:KEY=V,…`);
      const v: BackwardVariant = { name: item.slice(0, colon).trim(), env: {} };
      for (const kv of item.slice(colon + 1).split(',')) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new Error(`--variants: "${kv}" in "${item}" is not KEY=V`);
        const key = kv.slice(0, eq).trim();
        const value = kv.slice(eq + 1).trim();
        if (key === 'batch') {
          v.batchSize = Number(value);
          if (!Number.isInteger(v.batchSize) || v.batchSize <= 0)
            throw new Error(`--variants: batch=${value}`);
        } else v.env[key] = value;
      }
      return v;
    });
}

/** A traced graph as a dump: node keys, adjacency, and the nodes kept by pruning at 0.8 / 0.98. */
function graphDump(g: RawAttributionGraph): Dump {
  const keys = nodeKeys(g);
  const pruned = pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 });
  return { keys, adjacency: g.adjacency, kept: Array.from(pruned.keptNodes, (i) => keys[i]) };
}

/** A timed trace's phases and backward figures: its batches (B x t @ top : session.run ms) and TFLOP/s. */
function backwardFigures(g: AttributionResult, calls: RowsCall[], shape: BackwardShape) {
  const flops = sumFlops(shape, calls).total;
  const backwardS = (g.timingsMs.logits + g.timingsMs.features) / 1000;
  const runS = calls.reduce((n, c) => n + c.runMs, 0) / 1000;
  return {
    phasesS: Object.fromEntries(Object.entries(g.timingsMs).map(([k, x]) => [k, x / 1000])),
    // The forward phase's parts: the model's run, the host's work on its outputs, the sources, the encoder rows.
    forwardPartsS: Object.fromEntries(Object.entries(g.prepared.timingsMs).map(([k, x]) => [k, x / 1000])),
    batches: calls.map((c) => `${c.B}x${c.t}@${c.top}:${c.runMs.toFixed(0)}`).join(' '),
    backwardTflop: flops / 1e12,
    backwardTflops: flops / backwardS / 1e12,
    runTflops: flops / runS / 1e12,
    runS,
    // What the summary says of the device: its memory (nvidia-smi / CIRCUIT_DEVICE_MEMORY_MB) and the rows a run fits.
    rowLimit: g.backward.rowLimit,
    deviceMemoryGiB: g.backward.deviceMemory && {
      total: g.backward.deviceMemory.totalBytes / 2 ** 30,
      free: g.backward.deviceMemory.freeBytes / 2 ** 30,
      source: g.backward.deviceMemory.source,
    },
  };
}

/** One variant: its backward sessions made by a first trace, then a timed warm trace, compared with the base graph. */
async function runVariant(
  a: Attributor,
  ids: number[],
  settings: AttributionSettings,
  v: BackwardVariant,
  base: Dump,
  probe: RowsProbe,
  shape: BackwardShape,
  log: (msg: string) => void,
): Promise<Record<string, unknown>> {
  const saved = Object.fromEntries(Object.keys(v.env).map((k) => [k, process.env[k]]));
  const r: Record<string, unknown> = {
    name: v.name,
    env: v.env,
    batchSize: v.batchSize ?? settings.batchSize,
  };
  Object.assign(process.env, v.env);
  try {
    await a.releaseBackwardSessions();
    const s = { ...settings, batchSize: v.batchSize ?? settings.batchSize };
    const first = await a.attribute(ids, s);
    await first.prepared.runner.release();
    probe.take();
    const t0 = performance.now();
    const g = await a.attribute(ids, s);
    r.traceS = (performance.now() - t0) / 1000;
    Object.assign(r, backwardFigures(g, probe.take(), shape));
    r.vs_base = compareDumps(graphDump(g.graph), base);
    await g.prepared.runner.release();
  } catch (e) {
    r.error = (e as Error).stack ?? String(e);
  } finally {
    for (const [k, x] of Object.entries(saved)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  }
  log(`variant ${JSON.stringify(r)}`);
  return r;
}

export async function runGpu2b(o: Gpu2bOptions): Promise<Record<string, unknown>> {
  const spec = o.layers < GEMMA2_2B.layers ? withLayers(GEMMA2_2B, o.layers) : GEMMA2_2B;
  const ck = ensureSyntheticGemma2(spec, path.join(o.cacheDir, 'synthetic'), o.log);
  const model = openModel(ck.modelDir);
  const set = loadTranscoderSet(ck.transcoderDir);
  const ids = [2, ...Array.from({ length: o.tokens - 1 }, (_, i) => 3 + ((i * 7919) % (spec.vocab - 3)))];
  const report: Record<string, unknown> = {
    shape: `${spec.name}: ${spec.layers} layers, d ${spec.hidden}, vocab ${spec.vocab}, ${spec.features} features/layer`,
    tokens: o.tokens,
    maxFeatureNodes: o.maxFeatureNodes,
    batchSize: o.batchSize,
  };
  const cfg = model.config;
  for (const provider of o.providers.filter((p) => (p as string) !== 'none')) {
    const r: Record<string, unknown> = {};
    report[provider] = r;
    const profileDir = o.profile && path.join(o.profile, provider);
    if (profileDir) {
      fs.rmSync(profileDir, { recursive: true, force: true });
      fs.mkdirSync(profileDir, { recursive: true });
      process.env.CIRCUIT_ORT_PROFILE = profileDir; // read when each session is made
    }
    try {
      const t0 = performance.now();
      const a = await Attributor.create(model, set, { provider });
      r.createS = (performance.now() - t0) / 1000;
      r.deviceWeightGiB = a.forward.feeder.deviceBytes / 2 ** 30;
      r.createUploadS = a.forward.device.uploadMs / 1000;
      // Resident weights decoded (the decode pool) and uploaded while opening, overlapped.
      r.createReadyS = a.forward.feeder.readyMs / 1000;
      r.poolDecodedGiB = a.forward.feeder.poolDecodedBytes / 2 ** 30;
      o.log(`${provider}: Attributor.create ${(r.createS as number).toFixed(1)} s`);
      const settings = {
        maxNLogits: 10,
        desiredLogitProb: 0.95,
        batchSize: o.batchSize,
        maxFeatureNodes: o.maxFeatureNodes,
      };
      const probe = installRowsProbe();
      try {
        const t1 = performance.now();
        const first = await a.attribute(ids, settings);
        r.firstTraceS = (performance.now() - t1) / 1000;
        if (o.repeat > 0) await first.prepared.runner.release();
        o.log(
          `${provider}: first trace ${(r.firstTraceS as number).toFixed(1)} s (backward sessions made on first use)`,
        );
        const traces: number[] = [];
        let last = first;
        let calls = probe.take(); // --repeat 0: the first trace's figures
        for (let k = 0; k < o.repeat; k++) {
          probe.take();
          const t2 = performance.now();
          last = await a.attribute(ids, settings);
          traces.push((performance.now() - t2) / 1000);
          if (k < o.repeat - 1) await last.prepared.runner.release();
        }
        if (o.repeat > 0) calls = probe.take();
        r.traceS = traces;
        const space = last.prepared.space;
        const shape: BackwardShape = {
          nLayers: cfg.nLayers,
          d: cfg.hiddenSize,
          nHeads: cfg.nHeads,
          nKvHeads: cfg.nKvHeads,
          headDim: cfg.headDim,
          blockWidth: space.blocks.map((b) => b.n),
          skip: Array.from({ length: cfg.nLayers }, (_, l) => set.layerTensors(l).W_skip !== undefined),
        };
        r.activeFeatures = space.nActive;
        Object.assign(r, backwardFigures(last, calls, shape));
        r.deviceGiBAfter = a.forward.feeder.deviceBytes / 2 ** 30;
        r.hostResidentGiB = a.forward.feeder.residentBytes / 2 ** 30;
        r.headInGraph = a.forward.compiled.headInGraph;
        r.streamed = a.forward.compiled.streamed;
        r.uploadedGiB = a.forward.device.uploadedBytes / 2 ** 30;
        r.uploadS = a.forward.device.uploadMs / 1000;
        r.maxRssGiB = (process.resourceUsage().maxRSS * 1024) / 2 ** 30;
        const base = graphDump(last.graph);
        r.nodes = base.keys.length;
        r.prunedNodes = base.kept.length;
        if (o.dump) {
          writeDump(o.dump, provider, last.graph, base.kept);
          for (const other of ['cpu', 'webgpu', 'cuda']) {
            if (other === provider) continue;
            const d = readDump(o.dump, other);
            if (d) r[`vs_${other}`] = compareDumps(base, d);
          }
        }
        await last.prepared.runner.release();
        if (o.variants.length) {
          // Backward variants on the same opened model (weights stay on the device): per variant
          // the backward sessions are made again in its form, one trace makes them, the next is timed.
          r.variants = [];
          for (const v of o.variants) {
            (r.variants as unknown[]).push(await runVariant(a, ids, settings, v, base, probe, shape, o.log));
          }
        }
      } finally {
        probe.uninstall();
        await a.close();
      }
      if (profileDir) {
        delete process.env.CIRCUIT_ORT_PROFILE;
        // Profiles are written as the sessions are released (a.close() above).
        const summary = summarizeGpuProfiles(profileDir);
        r.profile = summary;
        o.log(`${provider} profile (both traces):\n${formatGpuProfile(summary)}`);
      }
      if (o.skipRates) {
        o.log(`${provider}: ${JSON.stringify(r)}`);
        continue;
      }
      const n = provider === 'cpu' ? 2048 : 8192;
      r.matmulTflops =
        provider === 'cpu'
          ? (await measureGemm(n, 5, os.cpus().length)).gflops / 1000
          : await measureDeviceGemm(provider, n);
      r.matmulN = n;
      r.backwardShareOfMatmul = (r.backwardTflops as number) / (r.matmulTflops as number);
      if (provider !== 'cpu') {
        // The backward's own projection (a full batch's [B·t, d]·[d, H·hd]) and float16 rates.
        const m = o.batchSize * o.tokens;
        const hd = cfg.nHeads * cfg.headDim;
        r.matmulProjectionTflops = await measureDeviceGemm(provider, m, cfg.hiddenSize, hd);
        r.matmulProjectionShape = `${m}x${cfg.hiddenSize}x${hd}`;
        r.matmulF16Tflops = await measureDeviceGemm(provider, n, n, n, 'float16').catch(
          (e: Error) => e.message,
        );
        r.matmulProjectionF16Tflops = await measureDeviceGemm(
          provider,
          m,
          cfg.hiddenSize,
          hd,
          'float16',
        ).catch((e: Error) => e.message);
      }
      o.log(`${provider}: ${JSON.stringify(r)}`);
    } catch (e) {
      r.error = (e as Error).stack ?? String(e);
      o.log(`${provider}: failed: ${r.error}`);
    }
  }
  set.close();
  model.close();
  return report;
}
