/**
 * The library store against an in-memory backend (FakeLibrary): what it lists, how it follows
 * the server's trace events, and its actions (start, move, delete with undo, duplicate).
 */
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi, FakeLibrary } from '../api/fake-client.ts';
import { provideApi } from '../api/inject.ts';
import type { TraceRecord } from '../api/types.ts';
import { useLibrary } from './library.ts';

let api: FakeApi;
let backend: FakeLibrary;
let done: TraceRecord[];

const settle = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** The store subscribed to the events and showing the library, as App.vue sets it up. */
async function openLibrary() {
  const lib = useLibrary();
  lib.subscribe((t) => done.push(t));
  await Promise.all([lib.refreshProjects(), lib.refresh()]);
  return lib;
}

beforeEach(() => {
  api = new FakeApi();
  backend = new FakeLibrary(api);
  provideApi(api);
  setActivePinia(createPinia());
  done = [];
});

describe('library store', () => {
  it('lists the traces newest first with their tags, and searches prompts and notes', async () => {
    const a = backend.seed({ prompt: 'The capital of Texas is', tags: ['geo'] });
    const b = backend.seed({ prompt: 'Two plus two is', notes: 'arithmetic, capital letters' });
    backend.seed({ prompt: 'in the trash', deletedAt: 5 });
    const lib = await openLibrary();
    expect(lib.traces.map((t) => t.id)).toEqual([b.id, a.id]);
    expect(lib.total).toBe(2);
    expect(lib.tags).toEqual([{ tag: 'geo', count: 1 }]);

    lib.filters.query = '  Capital ';
    await lib.refresh();
    expect(api.paramsOf('traces.list').at(-1)).toMatchObject({ query: 'Capital', limit: 200 });
    expect(lib.traces.map((t) => t.id)).toEqual([b.id, a.id]);
    lib.filters.query = 'texas';
    await lib.refresh();
    expect(lib.traces.map((t) => t.id)).toEqual([a.id]);
  });

  it('shows an error instead of the list when the backend fails', async () => {
    api.handle('traces.list', () => {
      throw new Error('the library is locked');
    });
    const lib = await openLibrary();
    expect(lib.error).toBe('the library is locked');
    expect(lib.loading).toBe(false);
  });

  it('follows trace.updated: new matching traces appear, others stay out, finished ones are reported', async () => {
    const lib = await openLibrary();
    lib.filters.query = 'dallas';
    const shown = backend.seed({ prompt: 'Dallas is in', status: 'running' });
    await lib.refresh();
    expect(lib.traces.map((t) => t.id)).toEqual([shown.id]);

    // Another client starts two traces: the one matching the search appears at the top.
    await api.call('traces.start', { modelId: 1, prompt: 'Not about that city' });
    const fresh = await api.call('traces.start', { modelId: 1, prompt: 'DALLAS again' });
    expect(lib.traces.map((t) => t.id)).toEqual([fresh.id, shown.id]);
    expect(lib.total).toBe(2);

    // Progress arrives, then the trace finishes: the record is replaced, the progress dropped.
    const progress = { phase: 'attribution', done: 3, total: 10 } as unknown as NonNullable<
      TraceRecord['progress']
    >;
    api.emit('trace.progress', { traceId: shown.id, progress });
    expect(lib.progress[shown.id]).toEqual(progress);
    backend.change(shown.id, { status: 'done' });
    expect(lib.byId(shown.id)?.status).toBe('done');
    expect(lib.progress[shown.id]).toBeUndefined();
    expect(done.map((t) => t.id)).toEqual([shown.id]);
    expect(lib.active.map((t) => t.id)).toEqual([fresh.id]);
  });

  it('follows trace.deleted and moves between projects, refreshing the project counts once per burst', async () => {
    const other = backend.addProject('Other');
    const a = backend.seed({ projectId: 1 });
    const b = backend.seed({ projectId: 1 });
    const lib = await openLibrary();
    lib.projectId = 1;
    await lib.refresh();
    expect(lib.projects.find((p) => p.id === 1)?.traceCount).toBe(2);
    const listsBefore = api.paramsOf('projects.list').length;

    const moved = await lib.move(a.id, other.id);
    expect(moved.projectId).toBe(other.id);
    expect(lib.traces.map((t) => t.id)).toEqual([b.id]);
    expect(lib.total).toBe(1);
    // move() refreshes the counts itself.
    expect(lib.projects.map((p) => [p.id, p.traceCount])).toEqual([
      [1, 1],
      [other.id, 1],
    ]);

    // Deleted elsewhere: it leaves the list; the counts follow after the debounce, once.
    await api.call('traces.delete', { id: b.id });
    api.emit('trace.updated', { trace: backend.change(a.id, { notes: 'x' }, false) });
    expect(lib.traces).toEqual([]);
    expect(lib.total).toBe(0);
    await settle(250);
    // the move's own refresh, then one debounced refresh for the event burst
    expect(api.paramsOf('projects.list').length - listsBefore).toBe(2);
    expect(lib.projects.find((p) => p.id === 1)?.traceCount).toBe(0);
  });

  it('deletes with an undo that brings the trace back, counting the trace once', async () => {
    const a = backend.seed({ prompt: 'keep me' });
    const b = backend.seed({ prompt: 'delete me' });
    const lib = await openLibrary();
    // The server's trace.deleted arrives before the reply: the total drops once, not twice.
    const undo = await lib.remove(b.id);
    expect(lib.traces.map((t) => t.id)).toEqual([a.id]);
    expect(lib.total).toBe(1);
    expect(backend.get(b.id).deletedAt).not.toBeNull();
    await undo();
    expect(backend.get(b.id).deletedAt).toBeNull();
    expect(lib.traces.map((t) => t.id).sort()).toEqual([a.id, b.id].sort());
    expect(lib.total).toBe(2);
  });

  it('starts, re-traces and duplicates into the selected project; the started one is awaited to open', async () => {
    const mine = backend.addProject('Mine');
    const src = backend.seed({ projectId: mine.id, prompt: 'The capital of Texas is', tags: ['geo'] });
    const lib = await openLibrary();
    lib.projectId = mine.id;
    await lib.refresh();

    const started = await lib.start({
      modelId: 1,
      prompt: 'Dallas is in',
      settings: { nodeThreshold: 0.5 },
      tags: [],
    });
    expect(api.paramsOf('traces.start')[0]).toEqual({
      modelId: 1,
      prompt: 'Dallas is in',
      settings: { nodeThreshold: 0.5 },
      tags: undefined,
      projectId: mine.id,
    });
    expect(lib.awaitingOpen).toBe(started.id);
    expect(lib.traces[0]).toMatchObject({ id: started.id, status: 'queued' });

    const again = await lib.retrace(src.id, { nodeThreshold: 0.9 });
    expect(lib.awaitingOpen).toBe(again.id);
    expect(again.settings.nodeThreshold).toBe(0.9);
    const copy = await lib.duplicate(src.id);
    expect(copy).toMatchObject({ prompt: src.prompt, projectId: mine.id, tags: ['geo'] });
    // Each appears once although both the reply and the event bring it.
    expect(lib.traces.map((t) => t.id)).toEqual([copy.id, again.id, started.id, src.id]);
    expect(lib.total).toBe(4);

    await lib.cancel(started.id);
    expect(lib.byId(started.id)?.status).toBe('cancelled');
    await lib.tag(src.id, ['texas']);
    expect(lib.byId(src.id)?.tags).toEqual(['geo', 'texas']);
    expect(lib.tags).toContainEqual({ tag: 'texas', count: 1 });
  });
});
