/**
 * The CLI side of the library: `circuit trace --save`, `circuit library list|show`, and
 * `circuit serve` as a real child process (loopback, ephemeral port, stopped with SIGTERM).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import { circuitRunner } from '../fixtures/circuit-cli.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { tempDir } from '../store/helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = tempDir('cw-cli-lib-');
const data = path.join(tmp.dir, 'library');
const model = path.join(tmp.dir, 'tiny-gemma2');

const circuit = circuitRunner(path.join(tmp.dir, 'cache'), {
  CIRCUIT_DATA_DIR: path.join(tmp.dir, 'unused'),
});

beforeAll(() => {
  // tiny-gemma2 with a word-level tokenizer ("w5 w9" → [2, 5, 9]), so `trace --prompt` works.
  fs.cpSync(fixturePath('tiny-gemma2'), model, { recursive: true });
  const vocab: Record<string, number> = { '<pad>': 0, '<eos>': 1, '<bos>': 2, '<unk>': 3 };
  for (let i = 4; i < 64; i++) vocab[`w${i}`] = i;
  const special = (id: number) => ({
    id,
    content: Object.keys(vocab)[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  fs.writeFileSync(
    path.join(model, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      added_tokens: [0, 1, 2, 3].map(special),
      normalizer: null,
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
    }),
  );
  fs.writeFileSync(path.join(model, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<bos>' }));
});
afterAll(() => tmp.cleanup());

describe('circuit trace --save and circuit library', () => {
  let id: number;

  it('trace --save stores the trace in the library given by --data', () => {
    const r = circuit(
      'trace',
      '--model',
      model,
      '--transcoders',
      path.join(model, 'transcoders', 'plt'),
      '--prompt',
      'w11 w40 w7 w11',
      '--save',
      '--data',
      data,
      '--tag',
      'cli',
      '--tag',
      'smoke',
      '--project',
      'CLI tests',
      '--batch-size',
      '64',
      '--json',
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.out).toBeNull();
    expect(out.library).toMatchObject({ data });
    id = out.library.trace_id;
    expect(fs.existsSync(path.join(tmp.dir, 'unused'))).toBe(false); // --data overrides $CIRCUIT_DATA_DIR
  });

  it('library list and show (--json and text)', () => {
    const list = circuit('library', 'list', '--json', '--data', data);
    expect(list.code).toBe(0);
    const l = JSON.parse(list.stdout);
    expect(l.total).toBe(1);
    expect(l.traces[0]).toMatchObject({
      id,
      status: 'done',
      prompt: 'w11 w40 w7 w11',
      tokenIds: [2, 11, 40, 7, 11],
      tags: ['cli', 'smoke'],
    });
    const show = circuit('library', 'show', String(id), '--json', '--verify', '--data', data);
    expect(show.code).toBe(0);
    const s = JSON.parse(show.stdout);
    expect(s).toMatchObject({ id, project: 'CLI tests', verify: { ok: true, problems: [] } });
    expect(s.views).toHaveLength(1);
    expect(s.views[0]).toMatchObject({ nodeThreshold: 0.8, edgeThreshold: 0.98, isDefault: true });
    expect(s.model.checkpointDir).toBe(model);
    const text = circuit('library', 'show', String(id), '--data', data);
    expect(text.stdout).toMatch(/status\s+done/);
    expect(text.stdout).toMatch(/graph\s+\d+ nodes/);
    const none = circuit('library', 'list', '--data', path.join(tmp.dir, 'nowhere'));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^error \[missing\]: no library in/);
    expect(circuit('library', 'show', '999', '--data', data).stderr).toMatch(/no trace 999/);
  });

  it('serve: loopback, --port 0, answers over WebSocket, stops cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'bin/circuit.mjs'), 'serve', '--port', '0', '--data', data, '--json'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('serve did not start')), 30_000);
        readline.createInterface({ input: child.stdout! }).once('line', (l) => {
          clearTimeout(timer);
          resolve(l);
        });
        child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
      });
      const info = JSON.parse(line);
      expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(info.token).toBeNull();
      const client = await connectApi(info.ws_url);
      const list = await client.call('traces.list', {});
      expect(list.traces.map((t) => t.id)).toEqual([id]);
      const view = await client.call('graphs.view', { traceId: id, nodeThreshold: 0.5 });
      expect(view.nodes.length).toBeGreaterThan(0);
      await client.close();
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
  });

  it('serve refuses bad flags', () => {
    expect(circuit('serve', '--port', '70000').stderr).toMatch(/--port must be an integer/);
    expect(circuit('serve', '--token', 'short').stderr).toMatch(/at least 16 characters/);
  });
});
