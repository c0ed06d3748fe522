/**
 * Feature dashboards as a job of the service (the embedded demo model, its shipped corpus, the
 * real engine): queued with progress events, every feature of the set stored at the end,
 * idempotent while one runs, `ifMissing`, cancel, readable errors for a bad corpus, and a job
 * stopped by a shutdown continuing from its checkpoint when the service starts again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DashboardsStatus } from '../../electron/api/contract.ts';
import { WorkbenchService } from '../../electron/api/service.ts';
import { createDirectClient } from '../../electron/api/transports/direct.ts';
import { PoolCompute } from '../../electron/jobs/pool-compute.ts';
import { Store } from '../../electron/store/store.ts';
import { type Harness, harness, nextEvent, rejection, TINY } from './helpers.ts';

const DEMO = path.resolve('resources/models/gemma2-demo');
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dash-api-cache-'));
let h: Harness;
let setId: number;

const ended = (s: DashboardsStatus) =>
  s.job !== null && ['done', 'failed', 'cancelled'].includes(s.job.state);

beforeAll(async () => {
  h = harness(cacheRoot);
  const m = await h.client.call('models.register', {
    checkpointDir: DEMO,
    transcoderDir: path.join(DEMO, 'transcoders', 'clt'),
  });
  expect(m.valid).toBe(true);
  setId = m.transcoderSetId as number;
});
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

describe('dashboards job', () => {
  it('starts with none stored and the corpus the model ships', async () => {
    const s = await h.client.call('features.dashboardsStatus', { transcoderSetId: setId });
    expect(s.stored).toBe(0);
    expect(s.total).toBe(4 * 512);
    expect(s.job).toBeNull();
    expect(s.defaultCorpus).toBe(path.join(DEMO, 'corpus', 'sample.txt'));
  });

  it('computes every feature of the set with progress, then ifMissing queues nothing', async () => {
    const seen: DashboardsStatus[] = [];
    const off = h.client.on('dashboards.updated', (d) => seen.push(d));
    const end = nextEvent(h.client, 'dashboards.updated', ended);
    const queued = await h.client.call('features.computeDashboards', {
      transcoderSetId: setId,
      maxTokens: 3000,
    });
    expect(queued.job?.state).toBe('queued');
    // a second request while it runs returns the same job
    const again = await h.client.call('features.computeDashboards', { transcoderSetId: setId });
    expect(again.job?.id).toBe(queued.job?.id);
    const last = await end;
    off();
    expect(last.job?.state).toBe('done');
    expect(last.stored).toBe(2048);
    const progress = seen.filter((s) => s.job?.state === 'running' && s.job.progress);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.some((s) => s.job?.progress?.phase === 'activations')).toBe(true);
    const info = await h.client.call('features.get', { transcoderSetId: setId, layer: 1, index: 7 });
    expect(info.dashboard?.layer).toBe(1);
    expect(info.dashboard?.index).toBe(7);
    expect(info.dashboard?.token_count).toBeGreaterThan(2000);
    const skip = await h.client.call('features.computeDashboards', {
      transcoderSetId: setId,
      ifMissing: true,
    });
    expect(skip.job?.id).toBe(queued.job?.id);
  }, 120_000);

  it('cancels a running job and keeps what was stored', async () => {
    const running = nextEvent(
      h.client,
      'dashboards.updated',
      (s) => s.job?.progress?.phase === 'activations',
    );
    const end = nextEvent(h.client, 'dashboards.updated', ended);
    const q = await h.client.call('features.computeDashboards', { transcoderSetId: setId });
    await running;
    const c = await h.client.call('features.cancelDashboards', { transcoderSetId: setId });
    const last = await end;
    expect(last.job?.id).toBe(q.job?.id);
    expect(last.job?.state).toBe('cancelled');
    expect(c.stored).toBe(2048);
  }, 120_000);

  it('names the corpus when it is missing or the model ships none', async () => {
    const e1 = await rejection(
      h.client.call('features.computeDashboards', { transcoderSetId: setId, corpus: '/nonexistent/c.txt' }),
    );
    expect(e1.code).toBe('invalid_params');
    expect(e1.field).toBe('corpus');
    expect(e1.message).toContain('/nonexistent/c.txt');
    const tiny = await h.client.call('models.register', {
      checkpointDir: TINY.checkpointDir(),
      transcoderDir: TINY.transcoderDir(),
    });
    const e2 = await rejection(
      h.client.call('features.computeDashboards', { transcoderSetId: tiny.transcoderSetId as number }),
    );
    expect(e2.code).toBe('invalid_params');
    expect(e2.field).toBe('corpus');
    expect(e2.message).toContain('corpus/');
  });
});

describe('dashboards job on the worker pool (as circuit serve runs it)', () => {
  it('a cancel while the model loads ends the job cancelled, stores nothing, and the next job runs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dash-pool-'));
    const store = Store.open(dir);
    const service = new WorkbenchService({ store, compute: new PoolCompute({ cacheRoot }) }).start();
    const client = createDirectClient(service);
    try {
      const m = await client.call('models.register', {
        checkpointDir: DEMO,
        transcoderDir: path.join(DEMO, 'transcoders', 'clt'),
      });
      const set = m.transcoderSetId as number;
      const loading = nextEvent(client, 'dashboards.updated', (s) => s.job?.progress?.phase === 'load');
      const end = nextEvent(client, 'dashboards.updated', ended);
      await client.call('features.computeDashboards', { transcoderSetId: set, maxTokens: 5000 });
      await loading;
      await client.call('features.cancelDashboards', { transcoderSetId: set });
      const last = await end;
      expect(last.job?.state).toBe('cancelled');
      expect(last.stored).toBe(0);
      // the service still computes afterwards
      const again = nextEvent(client, 'dashboards.updated', (s) => ended(s) && s.job?.id !== last.job?.id);
      await client.call('features.computeDashboards', { transcoderSetId: set, maxTokens: 1000 });
      expect((await again).job?.state).toBe('done');
    } finally {
      client.close();
      await service.close();
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('a job stopped by a shutdown continues from its checkpoint when the service starts again, and stores what an uninterrupted run stores', async () => {
    const dirs: string[] = [];
    const open = (dir: string) => {
      const store = Store.open(dir);
      const service = new WorkbenchService({ store, compute: new PoolCompute({ cacheRoot }) }).start();
      const client = createDirectClient(service);
      return {
        store,
        client,
        close: async () => {
          client.close();
          await service.close();
          store.close();
        },
      };
    };
    const register = async (client: ReturnType<typeof createDirectClient>) =>
      (
        await client.call('models.register', {
          checkpointDir: DEMO,
          transcoderDir: path.join(DEMO, 'transcoders', 'clt'),
        })
      ).transcoderSetId as number;
    // every 16th feature of each of the demo's 4 layers of 512
    const sample = (client: ReturnType<typeof createDirectClient>, set: number) =>
      Promise.all(
        Array.from({ length: 4 * 32 }, (_, i) =>
          client
            .call('features.get', { transcoderSetId: set, layer: i >> 5, index: (i & 31) * 16 })
            .then((f) => f.dashboard),
        ),
      );
    try {
      // the reference: one uninterrupted run
      dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dash-whole-')));
      const whole = open(dirs[0]);
      const wholeSet = await register(whole.client);
      const wholeEnd = nextEvent(whole.client, 'dashboards.updated', ended);
      await whole.client.call('features.computeDashboards', { transcoderSetId: wholeSet, maxTokens: 6000 });
      expect((await wholeEnd).job?.state).toBe('done');
      const expected = await sample(whole.client, wholeSet);
      await whole.close();

      // stopped by a shutdown part-way through the corpus
      dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dash-resumed-')));
      const first = open(dirs[1]);
      const set = await register(first.client);
      const midway = nextEvent(
        first.client,
        'dashboards.updated',
        (s) => s.job?.progress?.phase === 'activations' && s.job.progress.done >= 1000,
      );
      const queued = await first.client.call('features.computeDashboards', {
        transcoderSetId: set,
        maxTokens: 6000,
      });
      const at = (await midway).job!.progress!;
      await first.close();
      const job = queued.job!.id;
      const checkpoint = path.join(dirs[1], 'jobs', `${job}.checkpoint`);
      expect(fs.existsSync(checkpoint)).toBe(true);

      // started again: the same job continues after the windows it had done
      const again = open(dirs[1]);
      const progress: number[] = [];
      again.client.on('dashboards.updated', (s) => {
        if (s.job?.progress?.phase === 'activations') progress.push(s.job.progress.done);
      });
      const end = nextEvent(again.client, 'dashboards.updated', ended);
      const last = await end;
      expect(last.job?.id).toBe(job);
      expect(last.job?.state).toBe('done');
      expect(last.stored).toBe(2048);
      // (a run started over reports its first window's tokens first: 12 here)
      expect(progress[0]).toBeGreaterThanOrEqual(at.done);
      expect(progress[0]).toBeLessThan(at.total);
      expect(fs.existsSync(checkpoint)).toBe(false);
      expect(await sample(again.client, set)).toEqual(expected);
      await again.close();
    } finally {
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  }, 240_000);
});
