/**
 * Attribution targets on worker threads (the `trace` job kind's `targets` param): the same
 * logit nodes and rows as the in-process backend.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeLayout } from '../../electron/engine/attribution/graph-types.ts';
import type { TraceRequest } from '../../electron/jobs/compute-backend.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { PoolCompute } from '../../electron/jobs/pool-compute.ts';
import { FIXTURE_PROMPTS } from '../fixtures/prompts.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';

const FIX = fixturePath('tiny-gemma2');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-compute-targets-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('PoolCompute with targets', () => {
  it('traces a combination, a token and an inline vector as the in-process backend does', async () => {
    const d = (JSON.parse(fs.readFileSync(path.join(FIX, 'config.json'), 'utf8')) as { hidden_size: number })
      .hidden_size;
    const vocab = (
      JSON.parse(fs.readFileSync(path.join(FIX, 'config.json'), 'utf8')) as { vocab_size: number }
    ).vocab_size;
    const req: TraceRequest = {
      checkpointDir: FIX,
      transcoderDir: path.join(FIX, 'transcoders', 'plt'),
      prompt: '',
      tokenIds: FIXTURE_PROMPTS['tiny-gemma2'].cases[0],
      settings: {
        maxNLogits: 10,
        desiredLogitProb: 0.95,
        maxFeatureNodes: null,
        batchSize: 64,
        nodeThreshold: 0.8,
        edgeThreshold: 0.98,
        provider: 'cpu',
        // No tokenizer in the fixture: tokens are named <id>.
        targets: [
          { label: '5 vs 9', weights: { '<5>': 1, '<9>': -1 } },
          { token: 7 },
          { label: 'v', vector: Array.from({ length: d }, (_, i) => Math.cos(i)), weight: 0.5 },
        ],
      },
    };
    const cacheRoot = path.join(tmp, 'cache');
    const pool = new PoolCompute({ cacheRoot, slots: { cpu: 1 } });
    const local = new InProcessCompute({ cacheRoot });
    try {
      const got = await pool.trace(req, {});
      const want = await local.trace(req, {});
      const logits = got.raw.nodes.logits;
      expect(Array.from(logits.tokenId)).toEqual([vocab, 7, vocab + 2]);
      expect(logits.token).toEqual(['5 vs 9', '<7>', 'v']);
      expect(logits.probability[2]).toBe(0.5);
      expect(Array.from(logits.tokenId)).toEqual(Array.from(want.raw.nodes.logits.tokenId));
      const lay = nodeLayout(got.raw.nodes);
      const rows = (g: typeof got) => g.raw.adjacency.subarray(lay.logitOffset * lay.total);
      expect(Array.from(rows(got))).toEqual(Array.from(rows(want)));
    } finally {
      await pool.close();
      await local.close();
    }
  });
});
