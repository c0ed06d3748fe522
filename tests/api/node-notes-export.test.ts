/**
 * Node notes travel with exported graph JSON (qParams.nodeNotes, for the view's nodes) and come
 * back on import; bad nodeNotes in a file are ignored rather than failing the import.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../electron/api/contract.ts';
import { type Harness, harness, settled, TINY } from './helpers.ts';

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-notes-cache-'));
let h: Harness;
let trace: TraceRecord;

beforeAll(async () => {
  h = harness(cacheRoot);
  const m = await h.client.call('models.register', {
    checkpointDir: TINY.checkpointDir(),
    transcoderDir: TINY.transcoderDir(),
  });
  let id = -1;
  const end = settled(h.client, () => id);
  id = (await h.client.call('traces.start', { modelId: m.id, tokenIds: TINY.tokenIds })).id;
  trace = await end;
});
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

describe('node notes in graph JSON', () => {
  it('exports the notes of the view’s nodes and imports them back', async () => {
    const view = await h.client.call('graphs.view', { traceId: trace.id });
    const feature = view.nodes.find((n) => n.kind === 'feature');
    const token = view.nodes.find((n) => n.kind === 'token');
    expect(feature && token).toBeTruthy();
    await h.client.call('annotations.update', {
      traceId: trace.id,
      notes: { [feature!.id]: 'fires on the second w11', [token!.id]: '' },
    });
    const { json } = await h.client.call('graphs.exportJson', { traceId: trace.id });
    const doc = JSON.parse(json);
    expect(doc.qParams.nodeNotes).toEqual({ [feature!.id]: 'fires on the second w11' });

    const imported = await h.client.call('graphs.importJson', { json, fileName: 'noted.json' });
    const ann = await h.client.call('annotations.get', { traceId: imported.trace.id });
    expect(ann.notes).toEqual({ [feature!.id]: 'fires on the second w11' });

    // notes of nodes not in the file, or not strings, are dropped; the import still succeeds
    doc.qParams.nodeNotes = { '99_1_1': 'nowhere', [feature!.id]: 7 };
    const again = await h.client.call('graphs.importJson', {
      json: JSON.stringify(doc),
      fileName: 'bad-notes.json',
    });
    expect((await h.client.call('annotations.get', { traceId: again.trace.id })).notes).toEqual({});
  });

  it('writes no nodeNotes when there are none', async () => {
    await h.client.call('annotations.update', { traceId: trace.id, notes: {} });
    const { json } = await h.client.call('graphs.exportJson', { traceId: trace.id });
    expect(JSON.parse(json).qParams.nodeNotes).toBeUndefined();
  });
});
