/**
 * The model the e2e tests trace: the embedded demo when it is installed (resources/models/
 * gemma2-demo with its transcoders), otherwise the tiny Gemma-2 fixture of the unit tests with
 * the word-level tokenizer (prompts made of "w4" … "w63").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixturePath } from '../../tests/fixtures/tiny-checkpoints.ts';
import { writeWordTokenizer } from '../../tests/fixtures/word-tokenizer.ts';
import { ROOT } from './server.ts';

export interface E2EModel {
  demo: boolean;
  checkpointDir: string;
  transcoderDir: string;
  prompt: string;
  /** A logit token the prompt's graph must show (the demo: " Austin"). */
  expectLogit: string | null;
}

export function demoInstalled(): boolean {
  const dir = path.join(ROOT, 'resources/models/gemma2-demo');
  return (
    fs.existsSync(path.join(dir, 'config.json')) &&
    fs.readdirSync(dir).some((f) => f.endsWith('.safetensors')) &&
    fs.existsSync(path.join(dir, 'transcoders'))
  );
}

export function e2eModel(): E2EModel {
  if (demoInstalled() && process.env.E2E_FORCE_FIXTURE !== '1') {
    const dir = path.join(ROOT, 'resources/models/gemma2-demo');
    const tc = ['clt', 'plt'].map((k) => path.join(dir, 'transcoders', k)).find((d) => fs.existsSync(d));
    return {
      demo: true,
      checkpointDir: dir,
      transcoderDir: tc ?? path.join(dir, 'transcoders'),
      prompt: 'The capital of state containing Dallas is',
      expectLogit: ' Austin',
    };
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-e2e-model-'));
  const dir = path.join(work, 'tiny-gemma2');
  fs.cpSync(fixturePath('tiny-gemma2'), dir, { recursive: true });
  writeWordTokenizer(dir, 64);
  return {
    demo: false,
    checkpointDir: dir,
    transcoderDir: path.join(dir, 'transcoders', 'clt'),
    prompt: 'w5 w9 w17 w33 w8 w40',
    expectLogit: null,
  };
}
