/** The streamed corpus reader: formats, splits, byte offsets for resume, bad input. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CorpusDocument, readCorpus } from '../../../electron/engine/dashboards/corpus.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-corpus-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string | Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

async function all(f: string, opts: Parameters<typeof readCorpus>[1] = {}): Promise<CorpusDocument[]> {
  const out: CorpusDocument[] = [];
  for await (const d of readCorpus(f, opts)) out.push(d);
  return out;
}

describe('corpus reader', () => {
  it('reads one document per line with byte offsets, skipping blank lines, CRLF and a missing final newline', async () => {
    const text = 'The cat\r\n\n  \nsat — on ✓ the mat\nlast line';
    const f = file('lines.txt', text);
    const docs = await all(f);
    expect(docs.map((d) => d.text)).toEqual(['The cat', 'sat — on ✓ the mat', 'last line']);
    const bytes = Buffer.from(text);
    for (const d of docs) {
      expect(
        bytes
          .subarray(d.offset, d.end)
          .toString('utf8')
          .replace(/\r?\n$/, '')
          .replace(/\r$/, ''),
      ).toBe(d.text);
    }
    // resume from any document's offset yields the rest
    expect((await all(f, { startOffset: docs[1].offset })).map((d) => d.text)).toEqual(
      docs.slice(1).map((d) => d.text),
    );
    expect(await all(f, { startOffset: docs[2].end })).toEqual([]);
  });

  it('splits paragraphs on blank lines', async () => {
    const f = file('paras.txt', 'one\ntwo\n\n\nthree\n  \nfour\nfive\n');
    const docs = await all(f, { split: 'paragraph' });
    expect(docs.map((d) => d.text)).toEqual(['one\ntwo', 'three', 'four\nfive']);
    expect((await all(f, { split: 'paragraph', startOffset: docs[1].offset })).map((d) => d.text)).toEqual([
      'three',
      'four\nfive',
    ]);
  });

  it('reads JSONL with "text" or "token_ids", and names the byte of a bad record', async () => {
    const f = file(
      'c.jsonl',
      '{"text": "hello"}\n\n{"token_ids": [5, 6]}\n{"text": "  "}\n{"tokens": [1]}\n',
    );
    const docs = await all(f);
    expect(docs.map((d) => d.text ?? d.tokenIds)).toEqual(['hello', [5, 6], [1]]);
    const bad = file('bad.jsonl', '{"text": "ok"}\n{"text": 3}\n');
    await expect(all(bad)).rejects.toThrow(/byte 15.*neither a "text" string nor a "token_ids" array/);
    await expect(all(file('bad2.jsonl', '{"text": "ok"}\nnot json\n'))).rejects.toThrow(
      /invalid JSON at byte 15/,
    );
    await expect(all(file('bad3.jsonl', '{"token_ids": [1, -2]}\n'))).rejects.toThrow(
      /non-negative integers/,
    );
  });

  it('streams lines across read chunks and bounds the line length', async () => {
    const long = 'x'.repeat(3 * (1 << 20) + 17);
    const f = file('long.txt', `a\n${long}\nb\n`);
    const docs = await all(f);
    expect(docs.map((d) => d.text!.length)).toEqual([1, long.length, 1]);
    await expect(all(f, { maxLineBytes: 1 << 20 })).rejects.toThrow(/longer than 1048576 bytes/);
    await expect(all(path.join(tmp, 'missing.txt'))).rejects.toMatchObject({ code: 'io' });
  });
});
