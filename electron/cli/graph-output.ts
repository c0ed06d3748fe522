/**
 * Writes a traced graph as graph JSON, atomically (a crash never leaves half a file), streamed
 * piece by piece: no whole-document string (V8 strings stop at 2^29 characters) and no
 * object per link.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { writeAll } from '../engine/checkpoint/safetensors-writer.ts';
import { buildGraphDocument, graphJsonChunks } from '../engine/graph-json/export.ts';
import type { JsonObject } from '../engine/graph-json/types.ts';
import type { PrunedGraph } from '../engine/pruning/index.ts';
import type { TranscoderSet } from '../engine/transcoders/types.ts';

export interface TraceOutputInfo {
  slug: string;
  prompt: string;
  modelId: string;
  transcoderSet: TranscoderSet;
  info: Record<string, unknown>;
}

export function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
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
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      for (const chunk of graphJsonChunks(document)) writeAll(fd, Buffer.from(chunk, 'utf8'));
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
