/** The `circuit` command as other tools call it: a real child process, real flags, real output. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGolden } from '../engine/model/golden.ts';
import { circuitRunner } from '../fixtures/circuit-cli.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cli-cache-'));
afterAll(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

const circuit = circuitRunner(cacheDir);

describe('circuit logits', () => {
  it('--token-ids --json prints the documented shape and the reference logits', () => {
    const golden = loadGolden('tiny-gemma2').cases[0];
    const r = circuit(
      'logits',
      '--model',
      fixturePath('tiny-gemma2'),
      '--token-ids',
      golden.token_ids.join(','),
      '--top',
      '5',
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.token_ids).toEqual(golden.token_ids);
    expect(out.tokens).toHaveLength(golden.token_ids.length);
    expect(out.top).toHaveLength(5);
    const last = golden.logits[golden.logits.length - 1];
    const best = last.indexOf(Math.max(...last));
    expect(out.top[0].token_id).toBe(best);
    for (const t of out.top) {
      expect(Object.keys(t).sort()).toEqual(['logit', 'prob', 'token', 'token_id']);
      expect(Math.abs(t.logit - last[t.token_id])).toBeLessThanOrEqual(1e-4);
    }
    const probs = out.top.map((t: { prob: number }) => t.prob);
    expect([...probs].sort((a, b) => b - a)).toEqual(probs);
  });

  it('--prompt on the demo model prints " Austin" first, with the PyTorch numbers', () => {
    const demo = path.join(ROOT, 'resources/models/gemma2-demo');
    const prompt = 'The capital of state containing Dallas is';
    const r = circuit('logits', '--model', demo, '--prompt', prompt, '--top', '5', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens[0]).toBe('<bos>');
    expect(out.top[0].token).toBe(' Austin');
    expect(out.top[0].prob).toBeGreaterThanOrEqual(0.5);
    const golden = loadGolden('demo-gemma2').cases.find((c) => c.token_ids.join() === out.token_ids.join());
    expect(golden, 'the golden file has the demo prompt').toBeDefined();
    const last = golden!.logits[golden!.logits.length - 1];
    for (const t of out.top) expect(Math.abs(t.logit - last[t.token_id])).toBeLessThanOrEqual(1e-4);
  });

  it('explains an unavailable CUDA provider and how to install it', () => {
    const r = circuit(
      'logits',
      '--model',
      fixturePath('tiny-gpt2'),
      '--token-ids',
      '1,2',
      '--provider',
      'cuda',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error \[provider\]/);
    expect(r.stderr).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
  });

  it('falls back to CPU under --provider auto', () => {
    const r = circuit(
      'logits',
      '--model',
      fixturePath('tiny-gpt2'),
      '--token-ids',
      '1,2',
      '--provider',
      'auto',
      '--json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).top).toHaveLength(10);
  });

  it('rejects bad flags with the flag named', () => {
    const cases: [string[], RegExp][] = [
      [['--token-ids', '1,x'], /--token-ids/],
      [['--token-ids', '1,99999'], /outside the vocabulary/],
      [['--token-ids', '1', '--top', '0'], /--top/],
      [['--token-ids', '1', '--provider', 'tpu'], /--provider/],
      [['--prompt', 'hi', '--token-ids', '1'], /exactly one of --prompt or --token-ids/],
    ];
    for (const [extra, pattern] of cases) {
      const r = circuit('logits', '--model', fixturePath('tiny-gpt2'), ...extra);
      expect({ extra, code: r.code }).toEqual({ extra, code: 2 });
      expect(r.stderr).toMatch(pattern);
    }
  });

  it('needs a tokenizer for --prompt and says which file is missing', () => {
    const r = circuit('logits', '--model', fixturePath('tiny-gpt2'), '--prompt', 'hello');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tokenizer\.json/);
  });
});

describe('circuit inspect', () => {
  it('--json describes the model and transcoders with a verdict', () => {
    const dir = fixturePath('tiny-llama');
    const r = circuit(
      'inspect',
      '--model',
      dir,
      '--transcoders',
      path.join(dir, 'transcoders/plt-skip'),
      '--json',
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(true);
    expect(out.model).toMatchObject({ family: 'llama', layers: 2, hidden_size: 32, heads: 4, kv_heads: 2 });
    expect(out.model.dtypes).toEqual({ BF16: expect.any(Number) });
    expect(out.transcoders).toMatchObject({
      kind: 'plt',
      read_hook: 'mlp.hook_in',
      write_hook: 'mlp.hook_out',
      skip: true,
    });
  });

  it('reports transcoders that do not belong to the model, exit code 2', () => {
    const r = circuit(
      'inspect',
      '--model',
      fixturePath('tiny-llama'),
      '--transcoders',
      path.join(fixturePath('tiny-gemma2'), 'transcoders/plt'),
      '--json',
    );
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(false);
    expect(
      out.problems.some(
        (p: { code: string; message: string }) => p.code === 'mismatch' && /layer/.test(p.message),
      ),
    ).toBe(true);
  });
});
