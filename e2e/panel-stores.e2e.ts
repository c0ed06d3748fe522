/**
 * The panels' stores (Pinia, no DOM) against the real backend (WorkbenchService over a real library, the direct
 * transport): the library moves a trace to another project and keeps project counts live, trace
 * notes are stored and searchable; the features store refetches an open card when its set's
 * dashboards job ends (the embedded demo model).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPinia, setActivePinia } from 'pinia';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provideApi } from '../renderer/src/api/inject.ts';
import { managedFromBridge } from '../renderer/src/api/transport.ts';
import { useFeatures } from '../renderer/src/stores/features.ts';
import { useLibrary } from '../renderer/src/stores/library.ts';
import { type Harness, harness, settled, TINY } from '../tests/api/helpers.ts';

const DEMO = path.resolve('resources/models/gemma2-demo');
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-store-cache-'));
let h: Harness;

beforeAll(() => {
  h = harness(cacheRoot);
  // The direct client, shaped as the shell expects (always open), like the Electron bridge's.
  provideApi(managedFromBridge(h.client));
  setActivePinia(createPinia());
});
afterAll(async () => {
  await h.close();
  fs.rmSync(h.dir, { recursive: true, force: true });
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

const until = async (f: () => boolean, ms = 60_000) => {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('library store', () => {
  it('moves a trace to another project, counts follow, notes are searchable', async () => {
    const library = useLibrary();
    library.subscribe(() => {});
    const a = await h.client.call('projects.create', { name: 'A' });
    const b = await h.client.call('projects.create', { name: 'B' });
    const m = await h.client.call('models.register', {
      checkpointDir: TINY.checkpointDir(),
      transcoderDir: TINY.transcoderDir(),
    });
    await library.refreshProjects();
    library.projectId = a.id;
    await library.refresh();
    // a trace started elsewhere: the count of A follows the event
    let id = -1;
    const end = settled(h.client, () => id);
    id = (await h.client.call('traces.start', { modelId: m.id, tokenIds: TINY.tokenIds, projectId: a.id }))
      .id;
    await end;
    await until(() => library.projects.find((p) => p.id === a.id)?.traceCount === 1);
    expect(library.traces.map((t) => t.id)).toEqual([id]);

    await library.setNotes(id, 'second hop via Texas features');
    expect(library.byId(id)?.notes).toBe('second hop via Texas features');
    library.filters.query = 'texas features';
    await library.refresh();
    expect(library.traces.map((t) => t.id)).toEqual([id]);
    library.filters.query = '';

    await library.move(id, b.id);
    expect(library.traces).toEqual([]); // A is shown; the trace left it
    expect(library.projects.find((p) => p.id === a.id)?.traceCount).toBe(0);
    expect(library.projects.find((p) => p.id === b.id)?.traceCount).toBe(1);
    expect((await h.client.call('traces.get', { id })).projectId).toBe(b.id);
    const e = await library.move(id, 999_999).catch((x: { code: string }) => x);
    expect((e as { code: string }).code).toBe('not_found');
  });
});

describe('features store', () => {
  it('fills an open card when its set’s dashboards job ends, without a reload', async () => {
    const features = useFeatures();
    const m = await h.client.call('models.register', {
      checkpointDir: DEMO,
      transcoderDir: path.join(DEMO, 'transcoders', 'clt'),
    });
    const setId = m.transcoderSetId as number;
    const before = await features.fetch(setId, 2, 11);
    expect(before?.dashboard).toBeNull();
    const s = await features.compute(setId, { maxTokens: 2000 });
    expect(features.computing(setId)).toBe(true);
    expect(s.job?.state).toBe('queued');
    await until(() => features.get(setId, 2, 11)?.dashboard != null);
    expect(features.dashboards[setId].job?.state).toBe('done');
    expect(features.dashboards[setId].stored).toBe(2048);
    expect(features.computing(setId)).toBe(false);
    expect(features.get(setId, 2, 11)?.dashboard?.index).toBe(11);
  });
});
