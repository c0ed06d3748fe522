/**
 * Writes a traced graph as graph JSON, atomically (a crash never leaves half a file), streamed
 * piece by piece: no whole-document string (V8 strings stop at 2^29 characters) and no
 * object per link.
 *
 * Output paths: only a new path or an existing regular file is written (`outputTarget`). A
 * symlink to a regular file is written through: its target is replaced and the link stays.
 * A directory, FIFO, device, socket or dangling link is refused ('argument', exit 2) and
 * never replaced; no temporary file is left behind on any failure.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RawAttributionGraph } from '../attribution/graph-types.ts';
import { writeRawGraph } from '../attribution/raw-file.ts';
import { writeAll } from '../checkpoint/safetensors-writer.ts';
import { EngineError } from '../errors.ts';
import type { PrunedGraph } from '../pruning/index.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { buildGraphDocument, graphJsonChunks } from './export.ts';
import type { JsonObject } from './types.ts';

export interface TraceOutputInfo {
  slug: string;
  prompt: string;
  modelId: string;
  transcoderSet: TranscoderSet;
  info: Record<string, unknown>;
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The file an output flag (`--out PATH`) will replace: PATH when nothing is there or it is a
 * regular file; the resolved target when PATH is a symlink to a regular file. Anything else is
 * refused with an 'argument' error naming PATH, so callers check it before computing.
 */
export function outputTarget(file: string, flag = 'out'): string {
  const abs = path.resolve(file);
  const refuse = (why: string) =>
    new EngineError(
      'argument',
      `--${flag} ${file} is ${why}; give a regular file or a new path (it is not replaced)`,
      { field: flag },
    );
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw refuse(`unusable (${(e as Error).message})`);
    const dir = path.dirname(abs);
    let d: fs.Stats | undefined;
    try {
      d = fs.statSync(dir);
    } catch {}
    if (!d?.isDirectory())
      throw new EngineError('argument', `folder of --${flag} does not exist: ${dir}`, { field: flag });
    return abs;
  }
  if (st.isFile()) return abs;
  if (!st.isSymbolicLink()) throw refuse(kindOf(st));
  let target: string;
  try {
    target = fs.realpathSync(abs);
  } catch {
    throw refuse('a symlink to nothing');
  }
  const t = fs.statSync(target);
  if (!t.isFile()) throw refuse(`a symlink to ${kindOf(t)} (${target})`);
  return target;
}

/**
 * Writes `file` (checked by `outputTarget`) through a new temporary file in its folder, renamed
 * over it; the temporary file is removed on any failure.
 */
function replaceFile(file: string, write: (fd: number) => void, flag = 'out'): void {
  replaceFileAt(
    file,
    (tmp) => {
      const fd = fs.openSync(tmp, 'wx'); // a new file: never follows or reuses what is there
      try {
        write(fd);
      } finally {
        fs.closeSync(fd);
      }
    },
    flag,
  );
}

/** As replaceFile, for writers that take a path: `write` creates the temporary file itself. */
function replaceFileAt(file: string, write: (tmp: string) => void, flag: string): void {
  const target = outputTarget(file, flag);
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    write(tmp);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * A trace's files, each written atomically: the pruned graph as graph JSON (`out`) and the
 * unpruned graph as safetensors (`raw`, attribution/raw-file.ts); absent paths are skipped.
 */
export function writeTraceFiles(
  files: { out?: string | null; raw?: string | null },
  raw: RawAttributionGraph,
  pruned: PrunedGraph,
  o: TraceOutputInfo,
): void {
  if (files.out) writeTraceGraphJson(files.out, raw, pruned, o);
  if (files.raw) replaceFileAt(files.raw, (tmp) => writeRawGraph(tmp, raw, o.info), 'raw');
}

export function writeAtomically(file: string, text: string): void {
  replaceFile(file, (fd) => writeAll(fd, Buffer.from(text, 'utf8')));
}

export function writeTraceGraphJson(
  file: string,
  raw: RawAttributionGraph,
  pruned: PrunedGraph,
  o: TraceOutputInfo,
): void {
  const document = buildGraphDocument({
    raw,
    pruned,
    metadata: {
      slug: o.slug,
      scan: o.modelId,
      prompt: o.prompt,
      transcoderList: [o.transcoderSet.dir],
      modelId: o.modelId,
      extra: { info: JSON.parse(JSON.stringify(o.info)) as JsonObject },
    },
  });
  replaceFile(file, (fd) => {
    for (const chunk of graphJsonChunks(document)) writeAll(fd, Buffer.from(chunk, 'utf8'));
  });
}
