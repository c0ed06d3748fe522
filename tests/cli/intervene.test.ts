/** `circuit intervene` as other tools call it: a real child process on the demo model. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { circuitRunner } from '../fixtures/circuit-cli.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'resources/models/gemma2-demo');
const PROMPT = 'The capital of state containing Dallas is';
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cli-iv-cache-'));
afterAll(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

const circuit = circuitRunner(cacheDir);

const base = [
  'intervene',
  '--model',
  DEMO,
  '--transcoders',
  path.join(DEMO, 'transcoders/plt'),
  '--prompt',
  PROMPT,
];

describe('circuit intervene', () => {
  it('--freeze-attention: closed loop with every pattern held; --json reports it and the logit-target changes', () => {
    // 0:206 at " Dallas" (position 6) is on the strongest " Dallas" → " Austin" path (bench/intervene-demo.ts).
    const r = circuit(...base, '--ablate', '0:206:6', '--freeze-attention', '--top', '3', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.loop).toBe('closed');
    expect(out.freeze_attention).toBe(true);
    expect(out.before[0].token).toBe(' Austin');
    const austin = out.target_logit_changes.find((c: { token: string }) => c.token === ' Austin');
    expect(austin.delta).toBeLessThan(0);
    expect(austin.after - austin.before).toBeCloseTo(austin.delta, 5);

    const text = circuit(...base, '--ablate', '0:206:6', '--freeze-attention');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('closed loop (attention frozen), 1 intervention(s)');
  });

  it('rejects --freeze-attention with --open-loop or --generate, naming the flag', () => {
    for (const extra of [['--open-loop'], ['--generate', '2']]) {
      const r = circuit(...base, '--ablate', '0:206:6', '--freeze-attention', ...extra);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--freeze-attention/);
    }
    const help = circuit('intervene', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--freeze-attention');
  });
});
