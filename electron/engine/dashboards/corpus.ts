/**
 * A corpus streamed document by document with byte offsets, so a run can stop after any
 * document and a later run can seek straight back to it.
 *
 * Formats:
 *  - text: one document per line (`split: 'line'`, blank lines skipped) or per paragraph
 *    (`split: 'paragraph'`: runs of non-blank lines separated by blank lines, joined by \n);
 *  - jsonl: one JSON object per line with a string `"text"` field, or a pre-tokenized
 *    `"token_ids"` (or `"tokens"`) array of integers (BOS is added by the caller).
 *
 * Memory is bounded by the longest document: the file is read in 1 MiB chunks and only the
 * current line (at most `maxLineBytes`) is held.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { EngineError } from '../errors.ts';

export type CorpusFormat = 'text' | 'jsonl';
export type CorpusSplit = 'line' | 'paragraph';

export interface CorpusDocument {
  /** Byte offset of the document's first byte. */
  offset: number;
  /** Byte offset just past the document (where the next one may start). */
  end: number;
  text?: string;
  tokenIds?: number[];
}

export interface CorpusOptions {
  format?: CorpusFormat;
  split?: CorpusSplit;
  startOffset?: number;
  maxLineBytes?: number;
}

const CHUNK = 1 << 20;
export const DEFAULT_MAX_LINE_BYTES = 64 << 20;

export function detectCorpusFormat(file: string): CorpusFormat {
  return /\.(jsonl|ndjson)$/i.test(file) ? 'jsonl' : 'text';
}

interface Line {
  start: number;
  end: number; // past the newline
  text: string;
}

/** Lines of `file` from `startOffset`, with byte offsets (the trailing \r of CRLF removed). */
async function* readLines(file: string, startOffset: number, maxLineBytes: number): AsyncGenerator<Line> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    throw new EngineError('io', `cannot open the corpus: ${(e as Error).message}`, { file });
  }
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let lineStart = startOffset;
    let pos = startOffset;
    const take = (tail: Buffer, end: number): Line => {
      const bytes = pending.length ? Buffer.concat([...pending, tail]) : tail;
      pending = [];
      pendingBytes = 0;
      let text = new StringDecoder('utf8').end(bytes);
      if (text.endsWith('\r')) text = text.slice(0, -1);
      const line = { start: lineStart, end, text };
      lineStart = end;
      return line;
    };
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, from);
        if (nl < 0) break;
        yield take(Buffer.from(chunk.subarray(from, nl)), pos + nl + 1);
        from = nl + 1;
      }
      if (from < bytesRead) {
        pendingBytes += bytesRead - from;
        if (pendingBytes > maxLineBytes) {
          throw new EngineError(
            'argument',
            `a corpus line starting at byte ${lineStart} is longer than ${maxLineBytes} bytes`,
            { file },
          );
        }
        pending.push(Buffer.from(chunk.subarray(from)));
      }
      pos += bytesRead;
    }
    if (pendingBytes > 0) yield take(Buffer.alloc(0), pos);
  } finally {
    await fh.close();
  }
}

function parseJsonlDocument(line: Line, file: string): CorpusDocument | null {
  let v: unknown;
  try {
    v = JSON.parse(line.text);
  } catch (e) {
    throw new EngineError('argument', `invalid JSON at byte ${line.start}: ${(e as Error).message}`, {
      file,
    });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new EngineError('argument', `the JSONL record at byte ${line.start} is not an object`, { file });
  }
  const o = v as Record<string, unknown>;
  if (typeof o.text === 'string') {
    return o.text.trim() === '' ? null : { offset: line.start, end: line.end, text: o.text };
  }
  const ids = o.token_ids ?? o.tokens;
  if (Array.isArray(ids)) {
    if (!ids.every((t) => Number.isInteger(t) && (t as number) >= 0)) {
      throw new EngineError(
        'argument',
        `token_ids of the record at byte ${line.start} must be non-negative integers`,
        { file, field: 'token_ids' },
      );
    }
    return ids.length ? { offset: line.start, end: line.end, tokenIds: ids as number[] } : null;
  }
  throw new EngineError(
    'argument',
    `the JSONL record at byte ${line.start} has neither a "text" string nor a "token_ids" array`,
    { file, field: 'text' },
  );
}

/** The documents of a corpus file from `startOffset` (a document start or 0). */
export async function* readCorpus(file: string, opts: CorpusOptions = {}): AsyncGenerator<CorpusDocument> {
  const format = opts.format ?? detectCorpusFormat(file);
  const split = opts.split ?? 'line';
  const lines = readLines(file, opts.startOffset ?? 0, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  if (format === 'jsonl') {
    for await (const line of lines) {
      if (line.text.trim() === '') continue;
      const doc = parseJsonlDocument(line, file);
      if (doc) yield doc;
    }
    return;
  }
  if (split === 'line') {
    for await (const line of lines) {
      if (line.text.trim() !== '') yield { offset: line.start, end: line.end, text: line.text };
    }
    return;
  }
  let para: Line[] = [];
  const flush = (): CorpusDocument | null => {
    if (!para.length) return null;
    const doc = {
      offset: para[0].start,
      end: para[para.length - 1].end,
      text: para.map((l) => l.text).join('\n'),
    };
    para = [];
    return doc;
  };
  for await (const line of lines) {
    if (line.text.trim() === '') {
      const doc = flush();
      if (doc) yield doc;
    } else {
      para.push(line);
    }
  }
  const doc = flush();
  if (doc) yield doc;
}
