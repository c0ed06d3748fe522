/**
 * PoolCompute — the API service's ComputeBackend on worker threads — gives what the in-process
 * backend gives, and a cancel through the request's AbortSignal ends the trace as cancelled.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { TraceRequest } from '../../electron/jobs/compute-backend.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { PoolCompute } from '../../electron/jobs/pool-compute.ts';
import { FIXTURE_PROMPTS } from '../fixtures/prompts.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';

const FIX = fixturePath('tiny-gemma2');
const DEMO = path.resolve(import.meta.dirname, '../../resources/models/gemma2-demo');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-compute-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const request = (batchSize: number): TraceRequest => ({
  checkpointDir: FIX,
  transcoderDir: path.join(FIX, 'transcoders', 'plt'),
  prompt: '',
  tokenIds: FIXTURE_PROMPTS['tiny-gemma2'].cases[0],
  settings: {
    maxNLogits: 10,
    desiredLogitProb: 0.95,
    maxFeatureNodes: null,
    batchSize,
    nodeThreshold: 0.8,
    edgeThreshold: 0.98,
    provider: 'cpu' as const,
  },
});

describe('PoolCompute', () => {
  it('traces and re-prunes like the in-process backend, and cancels through the signal', async () => {
    const cacheRoot = path.join(tmp, 'cache');
    const pool = new PoolCompute({ cacheRoot, slots: { cpu: 1 } });
    const local = new InProcessCompute({ cacheRoot });
    try {
      const phases = new Set<string>();
      const got = await pool.trace(request(64), { onProgress: (p) => phases.add(p.phase) });
      const want = await local.trace(request(64), {});
      expect(got.tokenIds).toEqual(want.tokenIds);
      expect(Array.from(got.raw.nodes.features.index)).toEqual(Array.from(want.raw.nodes.features.index));
      expect(Array.from(got.pruned.keptNodes)).toEqual(Array.from(want.pruned.keptNodes));
      expect(got.pruned.replacementScore).toBeCloseTo(want.pruned.replacementScore, 5);
      expect(phases).toContain('features');

      const options = { nodeThreshold: 0.5, edgeThreshold: 0.9 };
      const raw = want.raw;
      const a = await pool.prune({ key: 't1', raw: () => raw, options });
      const b = await local.prune({ key: 't1', raw: () => raw, options });
      expect(Array.from(a.keptNodes)).toEqual(Array.from(b.keptNodes));
      expect(Array.from(a.edges.weight)).toEqual(Array.from(b.edges.weight));
      expect(raw.adjacency.length).toBeGreaterThan(0); // the caller's graph is not moved away

      // A trace long enough that the cancel (main thread → worker message → the signal checked
      // between batches) always lands before its end: the demo model's CLT, one row per batch
      // (340 batches); the tiny fixture finishes in a few ms, faster than the round trip.
      const controller = new AbortController();
      const slow = pool.trace(
        {
          ...request(1),
          checkpointDir: DEMO,
          transcoderDir: path.join(DEMO, 'transcoders', 'clt'),
          prompt: 'The capital of state containing Dallas is',
          tokenIds: null,
        },
        {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.phase === 'features' && p.done >= 2) controller.abort();
          },
        },
      );
      await expect(slow).rejects.toMatchObject({ code: 'cancelled' });
    } finally {
      await pool.close();
      await local.close();
    }
  });

  it('hands over a graph whose adjacency is shared memory (faulted in by a worker) as a plain one', async () => {
    // Every adjacency made on shared memory (runtime/prefaulted.ts; normally only past 64 MB): it
    // cannot be transferred, so it is shared with the main thread instead of moved.
    vi.stubEnv('CIRCUIT_PREFAULT_MIN_MB', '0');
    const cacheRoot = path.join(tmp, 'cache-shared');
    const pool = new PoolCompute({ cacheRoot, slots: { cpu: 1 } });
    const local = new InProcessCompute({ cacheRoot });
    try {
      const got = await pool.trace(request(64), {});
      const want = await local.trace(request(64), {});
      expect(want.raw.adjacency.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(got.raw.adjacency.length).toBeGreaterThan(0);
      expect(Array.from(got.raw.adjacency)).toEqual(Array.from(want.raw.adjacency));
      expect(Array.from(got.pruned.keptNodes)).toEqual(Array.from(want.pruned.keptNodes));
      const options = { nodeThreshold: 0.5, edgeThreshold: 0.9 };
      const a = await pool.prune({ key: 't2', raw: () => got.raw, options });
      const b = await local.prune({ key: 't2', raw: () => want.raw, options });
      expect(Array.from(a.edges.weight)).toEqual(Array.from(b.edges.weight));
    } finally {
      vi.unstubAllEnvs();
      await pool.close();
      await local.close();
    }
  });

  it('runs interventions on a worker exactly as in process, with progress and logit targets', async () => {
    const cacheRoot = path.join(tmp, 'cache');
    const pool = new PoolCompute({ cacheRoot, slots: { cpu: 1 } });
    const local = new InProcessCompute({ cacheRoot });
    try {
      const traced = await local.trace(request(64), {});
      const f = traced.raw.nodes.features;
      const req = {
        checkpointDir: FIX,
        transcoderDir: path.join(FIX, 'transcoders', 'plt'),
        tokenIds: traced.tokenIds,
        provider: 'cpu' as const,
        trackTokens: Array.from(traced.raw.nodes.logits.tokenId),
        spec: {
          loop: 'closed' as const,
          edits: [
            { layer: f.layer[0], feature: f.index[0], position: f.position[0], mode: 'ablate' as const },
          ],
          freezeAttention: false,
          generate: 2,
          top: 5,
        },
      };
      const phases = new Set<string>();
      const got = await pool.intervene(req, { onProgress: (p) => phases.add(p.phase) });
      const want = await local.intervene(req, {});
      const strip = (o: typeof got) => ({ ...o, timingsMs: {} });
      expect(strip(got)).toEqual(strip(want));
      expect(got.logitChanges).toHaveLength(req.trackTokens.length);
      expect(got.generated).toHaveLength(2);
      expect(phases).toContain('intervene');
      await expect(
        pool.intervene({ ...req, spec: { ...req.spec, edits: [{ ...req.spec.edits[0], position: 0 }] } }, {}),
      ).rejects.toMatchObject({ code: 'argument' });
    } finally {
      await pool.close();
      await local.close();
    }
  });
});
