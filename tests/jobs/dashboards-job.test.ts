/**
 * The dashboards job on the worker runner: progress, and a shutdown mid-run (its checkpoint
 * kept) → restart → resume from the checkpoint, producing the same file as an uninterrupted run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkerRunner } from '../../electron/jobs/runner.ts';
import type { JobProgress, JsonValue } from '../../electron/jobs/types.ts';
import { fixturePath, hash32 } from '../fixtures/tiny-checkpoints.ts';

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
    const full = path.join(tmp, 'full.jsonl');
    const part = path.join(tmp, 'part.jsonl');

    const runner1 = new WorkerRunner({ slots: { cpu: 1 } });
    let stopped: Promise<void> | undefined;
    const first = runner1.run('dashboards', params(part), {
      onProgress: (p) => {
        if (Number(p.detail?.windows ?? 0) >= 60) stopped ??= runner1.close();
      },
    });
    await expect(first).rejects.toMatchObject({ code: 'cancelled' });
    await stopped;
    expect(fs.existsSync(part)).toBe(false);
    expect(fs.existsSync(`${part}.checkpoint`)).toBe(true);

    // restart: resume the stopped job (params.resume defaults to true), and run the same job
    // uninterrupted beside it
    const runner2 = new WorkerRunner({ slots: { cpu: 2 } });
    const progress: JobProgress[] = [];
    const [done] = await Promise.all([
      runner2.run('dashboards', params(part)),
      runner2.run('dashboards', params(full), { onProgress: (p) => progress.push(p) }),
    ]);
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
    await runner2.close();
  });
});
