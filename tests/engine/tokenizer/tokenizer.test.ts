import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPromptTokenizer, loadTokenizer } from '../../../electron/engine/tokenizer/index.ts';
import { MAX_TOKENIZER_JSON_BYTES } from '../../../electron/engine/tokenizer/tokenizer.ts';
import { expectEngineError, expectEngineErrorAsync } from '../checkpoint/helpers.ts';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-tok-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function writeTokenizer(name: string, tokenizerJson: unknown, config?: unknown): string {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  if (config !== undefined) fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(config));
  return d;
}

/** vocab + merges such that each `word` becomes one token (built left to right). */
function bpeVocab(base: string[], words: string[], firstId: number) {
  const vocab: Record<string, number> = {};
  const merges: [string, string][] = [];
  let next = firstId;
  const add = (t: string) => {
    if (!(t in vocab)) vocab[t] = next++;
  };
  for (const c of base) add(c);
  for (const w of words) {
    const chars = Array.from(w);
    let cur = chars[0];
    for (const c of chars.slice(1)) {
      if (!merges.some(([a, b]) => a === cur && b === c)) merges.push([cur, c]);
      cur += c;
      add(cur);
    }
  }
  return { vocab, merges };
}

const SENTENCE = 'The capital of Texas is Austin';

/** A tiny Gemma-style tokenizer: `▁` for spaces, byte fallback, `<bos>` template. */
function gemmaLike() {
  const special = ['<pad>', '<eos>', '<bos>', '<unk>'];
  const bytes = Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`);
  const letters = Array.from(new Set(Array.from(SENTENCE.replaceAll(' ', '▁')))).concat(['▁']);
  const words = ['The', '▁capital', '▁of', '▁Texas', '▁is', '▁Austin'];
  const { vocab: rest, merges } = bpeVocab(letters, words, 4 + 256);
  const vocab: Record<string, number> = {};
  special.forEach((t, i) => {
    vocab[t] = i;
  });
  bytes.forEach((t, i) => {
    vocab[t] = 4 + i;
  });
  Object.assign(vocab, rest);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<bos>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<bos>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<bos>': { id: '<bos>', ids: [2], tokens: ['<bos>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** GPT-2's byte → printable unicode map. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array<string>(256);
  bs.forEach((b, i) => {
    map[b] = String.fromCodePoint(cs[i]);
  });
  return map;
}

/** A tiny GPT-2-style byte-level BPE with `<|endoftext|>` as its only special token. */
function gpt2Like() {
  const base = bytesToUnicode();
  const words = ['The', 'Ġcapital', 'Ġof', 'ĠTexas', 'Ġis', 'ĠAustin'];
  const { vocab, merges } = bpeVocab(base, words, 0);
  const eot = Object.keys(vocab).length;
  return {
    version: '1.0',
    added_tokens: [
      {
        id: eot,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`), // old string format
    },
  };
}

const ROUND_TRIP = [SENTENCE, 'café au lait ☕ 😀', '  two  spaces\nnewline\ttab', 'Ünïcödé Austin', ''];

describe('Gemma-style SentencePiece BPE', () => {
  it('encodes without specials then prepends <bos>', async () => {
    const d = writeTokenizer('gemma', gemmaLike(), {
      bos_token: '<bos>',
      eos_token: '<eos>',
      pad_token: '<pad>',
    });
    const tok = await loadTokenizer(d);
    expect(tok.bosId).toBe(2);
    expect(tok.bosToken).toBe('<bos>');
    expect(tok.bosSource).toBe('bos');
    expect(tok.eosId).toBe(1);
    expect(tok.padId).toBe(0);
    const plain = tok.encode(SENTENCE, { addSpecialTokens: false });
    expect(plain.map((id) => tok.idToVocabToken(id))).toEqual([
      'The',
      '▁capital',
      '▁of',
      '▁Texas',
      '▁is',
      '▁Austin',
    ]);
    expect(tok.encode(SENTENCE)).toEqual([2, ...plain]);
    const prompt = tok.encodePrompt(SENTENCE);
    expect(prompt).toEqual([2, ...plain]);
    expect(tok.idsToTokens(prompt)).toEqual(['<bos>', 'The', ' capital', ' of', ' Texas', ' is', ' Austin']);
    expect(tok.tokenToString(tok.tokenToId('▁Austin')!)).toBe(' Austin');
    // a prompt that already starts with <bos> is not given a second one
    expect(tok.encodePrompt('<bos>The')).toEqual([2, tok.tokenToId('The')]);
    expect(tok.vocabSize).toBe(Math.max(...Object.values(gemmaLike().model.vocab)) + 1);
    expect(tok.specialIds.has(2)).toBe(true);
  });

  it('byte fallback round-trips any text', async () => {
    const tok = await loadTokenizer(writeTokenizer('gemma-rt', gemmaLike(), { bos_token: '<bos>' }));
    const ids = tok.encode('é', { addSpecialTokens: false });
    expect(ids.map((i) => tok.idToVocabToken(i))).toEqual(['<0xC3>', '<0xA9>']);
    for (const text of ROUND_TRIP) {
      const p = tok.encodePrompt(text);
      expect(p[0]).toBe(2);
      expect(tok.decode(p.slice(1))).toBe(text);
    }
  });

  it('finds <bos> without a tokenizer_config.json', async () => {
    const tok = await loadTokenizer(writeTokenizer('gemma-noconfig', gemmaLike()));
    expect(tok.bosId).toBe(2);
    expect(tok.bosSource).toBe('bos');
  });
});

describe('GPT-2-style byte-level BPE', () => {
  it('uses <|endoftext|> as BOS and gives readable token strings', async () => {
    const json = gpt2Like();
    const eot = json.added_tokens[0].id;
    const d = writeTokenizer('gpt2', json, {
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      unk_token: { __type: 'AddedToken', content: '<|endoftext|>', special: true },
      add_prefix_space: false,
    });
    const tok = await loadTokenizer(d);
    expect(tok.bosId).toBe(eot);
    expect(tok.eosId).toBe(eot);
    expect(tok.vocabSize).toBe(eot + 1);
    const plain = tok.encode(SENTENCE, { addSpecialTokens: false });
    expect(plain.map((id) => tok.idToVocabToken(id))).toEqual([
      'The',
      'Ġcapital',
      'Ġof',
      'ĠTexas',
      'Ġis',
      'ĠAustin',
    ]);
    expect(tok.encode(SENTENCE)).toEqual(plain); // GPT-2 adds no special tokens itself
    const prompt = tok.encodePrompt(SENTENCE);
    expect(prompt).toEqual([eot, ...plain]);
    expect(tok.idsToTokens(prompt)).toEqual([
      '<|endoftext|>',
      'The',
      ' capital',
      ' of',
      ' Texas',
      ' is',
      ' Austin',
    ]);
    expect(tok.encodePrompt('<|endoftext|>The')).toEqual([eot, tok.tokenToId('The')]);
    for (const text of ROUND_TRIP)
      expect(tok.decode(tok.encode(text, { addSpecialTokens: false }))).toBe(text);
  });

  it('falls back to eos when there is no BOS, and to pad before eos', async () => {
    const noConfig = await loadTokenizer(writeTokenizer('gpt2-noconfig', gpt2Like()));
    expect(noConfig.bosSource).toBe('eos');
    expect(noConfig.bosToken).toBe('<|endoftext|>');
    const json = gpt2Like();
    const eot = json.added_tokens[0].id;
    json.added_tokens.push({ ...json.added_tokens[0], id: eot + 1, content: '<|pad|>' });
    // Qwen-style: bos_token explicitly null → pad
    const qwen = await loadTokenizer(
      writeTokenizer('qwen-like', json, {
        bos_token: null,
        pad_token: '<|pad|>',
        eos_token: '<|endoftext|>',
      }),
    );
    expect(qwen.bosSource).toBe('pad');
    expect(qwen.bosId).toBe(eot + 1);
    expect(qwen.encodePrompt('The')[0]).toBe(eot + 1);
  });

  it('createPromptTokenizer accepts parsed objects', () => {
    const tok = createPromptTokenizer(gpt2Like(), { bos_token: '<|endoftext|>' });
    expect(tok.tokenToString(tok.tokenToId('ĠAustin')!)).toBe(' Austin');
    expectEngineError(() => tok.tokenToString(1e9), 'argument', 'tokenizer.json');
    expectEngineError(() => tok.tokenToString(-1), 'argument');
  });
});

describe('errors', () => {
  it('missing tokenizer.json', async () => {
    const d = path.join(root, 'none');
    fs.mkdirSync(d, { recursive: true });
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', path.join(d, 'tokenizer.json'));
    await expectEngineErrorAsync(() => loadTokenizer(path.join(root, 'nowhere')), 'tokenizer', 'nowhere');
  });

  it('malformed tokenizer.json / tokenizer_config.json', async () => {
    const d = path.join(root, 'bad');
    fs.mkdirSync(d, { recursive: true });
    const f = path.join(d, 'tokenizer.json');
    fs.writeFileSync(f, '{"model": ');
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', f, 'JSON');
    fs.writeFileSync(f, '[]');
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', f);
    fs.writeFileSync(f, '{"version": "1.0"}');
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', f, 'model');
    fs.writeFileSync(f, JSON.stringify({ model: { type: 'Mystery' }, added_tokens: [] }));
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', f);
    fs.writeFileSync(f, JSON.stringify({ ...gpt2Like(), added_tokens: 7 }));
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', f, 'added_tokens');
    fs.writeFileSync(f, JSON.stringify(gpt2Like()));
    const c = path.join(d, 'tokenizer_config.json');
    fs.writeFileSync(c, '{oops');
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', c);
    fs.writeFileSync(c, '[1]');
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', c);
  });
  it('a FIFO, /dev/zero or oversized tokenizer file is refused at once, naming it', async () => {
    const d = path.join(root, 'hostile');
    fs.mkdirSync(d, { recursive: true });
    const f = path.join(d, 'tokenizer.json');
    const c = path.join(d, 'tokenizer_config.json');
    execFileSync('mkfifo', [f]);
    let t0 = performance.now();
    await expectEngineErrorAsync(
      () => loadTokenizer(d),
      'tokenizer',
      f,
      'tokenizer.json is not a regular file',
    );
    expect(performance.now() - t0).toBeLessThan(2000);
    fs.rmSync(f);
    fs.symlinkSync('/dev/zero', f);
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', f, 'not a regular file');
    fs.rmSync(f);
    // sparse: the size alone refuses it, nothing is read
    fs.writeFileSync(f, '');
    fs.truncateSync(f, MAX_TOKENIZER_JSON_BYTES + 1);
    t0 = performance.now();
    await expectEngineErrorAsync(
      () => loadTokenizer(d),
      'tokenizer',
      f,
      `at most ${MAX_TOKENIZER_JSON_BYTES}`,
    );
    expect(performance.now() - t0).toBeLessThan(2000);
    fs.writeFileSync(f, JSON.stringify(gpt2Like()));
    execFileSync('mkfifo', [c]);
    await expectEngineErrorAsync(() => loadTokenizer(d), 'tokenizer', c, 'not a regular file');
    fs.rmSync(c);
    expect((await loadTokenizer(d)).vocabSize).toBeGreaterThan(0);
  });
});
