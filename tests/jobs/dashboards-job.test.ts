/**
 * The dashboards job in the pool: progress, and an app shutdown mid-run → interrupted →
 * restart → resume from the checkpoint, producing the same file as an uninterrupted run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobPool } from '../../electron/jobs/pool.ts';
import type { JobProgress, JsonValue } from '../../electron/jobs/types.ts';
import { fixturePath, hash32 } from '../fixtures/tiny-checkpoints.ts';
import { LibraryJobQueue } from './library-queue.ts';

const FIX = fixturePath('tiny-gemma2');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-dashjob-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const corpus = path.join(tmp, 'corpus.jsonl');
fs.writeFileSync(
  corpus,
  Array.from({ length: 360 }, (_, i) =>
    JSON.stringify({ token_ids: Array.from({ length: 11 + (i % 5) }, (_, j) => 3 + (hash32(i, j) % 61)) }),
  ).join('\n'),
);

const params = (out: string): JsonValue => ({
  model: FIX,
  transcoders: path.join(FIX, 'transcoders', 'plt'),
  corpus,
  out,
  window: 12,
  context: 3,
  topK: 4,
  reservoir: 8,
  checkpointEvery: 20,
  cacheRoot: path.join(tmp, 'cache'),
});

describe('dashboards job', () => {
  it('resumes after a shutdown with output identical to an uninterrupted run', async () => {
    const db = path.join(tmp, 'library');
    const full = path.join(tmp, 'full.jsonl');
    const part = path.join(tmp, 'part.jsonl');

    const store1 = new LibraryJobQueue(db);
    const pool1 = new JobPool({ store: store1, slots: { cpu: 1 } });
    await pool1.start();
    const job = await pool1.submit('dashboards', params(part));
    await new Promise<void>((resolve) => {
      pool1.on('progress', (e) => {
        if (e.id === job.id && Number(e.progress.detail?.windows ?? 0) >= 60) resolve();
      });
    });
    await pool1.close();
    const mid = store1.get(job.id)!;
    expect(mid.state).toBe('interrupted');
    expect(fs.existsSync(part)).toBe(false);
    expect(fs.existsSync(`${part}.checkpoint`)).toBe(true);
    store1.close();

    // restart: resume the interrupted job, and run the same job uninterrupted beside it
    const store2 = new LibraryJobQueue(db);
    const pool2 = new JobPool({ store: store2, slots: { cpu: 2 } });
    expect((await pool2.start()).map((j) => j.id)).toEqual([job.id]);
    const progress: JobProgress[] = [];
    const ref = await pool2.submit('dashboards', params(full));
    pool2.on('progress', (e) => {
      if (e.id === ref.id) progress.push(e.progress);
    });
    await pool2.requeue(job.id, { resume: true });
    const [done, refDone] = await Promise.all([pool2.wait(job.id), pool2.wait(ref.id)]);
    expect(refDone.state, JSON.stringify(refDone.error)).toBe('done');
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    const result = done.result as { resumedFromWindow: number; windows: number; features: number };
    expect(result.resumedFromWindow).toBeGreaterThanOrEqual(20);
    expect(result.features).toBe(144);
    expect(fs.readFileSync(part, 'utf8')).toBe(fs.readFileSync(full, 'utf8'));
    expect(fs.existsSync(`${part}.checkpoint`)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const phases = new Set(progress.map((p) => p.phase));
    expect([...phases]).toEqual(['load', 'activations', 'records']);
    const act = progress.filter((p) => p.phase === 'activations');
    expect(act[act.length - 1].unit).toBe('tokens');
    expect(act.some((p) => p.etaSeconds !== undefined && p.detail?.windows !== undefined)).toBe(true);
    await pool2.close();
    store2.close();
  });
});
