/**
 * The annotations store against the in-memory backend (FakeGraphs): pins, supernode groups
 * (a node in one group only; their layout keys dropped when indices shift), labels and notes,
 * each persisted through annotations.update.
 */
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi, FakeGraphs } from '../api/fake-client.ts';
import { provideApi } from '../api/inject.ts';
import { useAnnotations } from './annotations.ts';

const TRACE = 3;
let api: FakeApi;
let graphs: FakeGraphs;

beforeEach(() => {
  api = new FakeApi();
  graphs = new FakeGraphs(api);
  graphs.add({ id: TRACE }, []);
  provideApi(api);
  setActivePinia(createPinia());
});

describe('annotations store', () => {
  it('toggles pins, loading the annotations once and saving each change', async () => {
    const an = useAnnotations();
    await an.togglePin(TRACE, 'a');
    await an.togglePin(TRACE, 'b');
    await an.togglePin(TRACE, 'a');
    expect(api.paramsOf('annotations.get')).toHaveLength(1);
    expect(api.paramsOf('annotations.update').map((p) => p.pinned)).toEqual([['a'], ['a', 'b'], ['b']]);
    expect(graphs.annotations.get(TRACE)?.pinned).toEqual(['b']);
    expect([...an.pinnedSet(TRACE)]).toEqual(['b']);
    await an.setPinned(TRACE, ['c', 'c', 'd']);
    expect(an.of(TRACE)?.pinned).toEqual(['c', 'd']);
  });

  it('groups nodes into one supernode each, and drops the supernode layout when groups change', async () => {
    const an = useAnnotations();
    await an.moveInSubgraph(TRACE, 'supernode:0', { x: 1, y: 2 });
    await an.moveInSubgraph(TRACE, 'a', { x: 3, y: 4 });
    expect(await an.group(TRACE, ['a', 'b'], 'Texas')).toBe(0);
    expect(await an.group(TRACE, ['b', 'c'], 'Cities')).toBe(1);
    expect(an.of(TRACE)?.supernodes).toEqual([
      { label: 'Texas', nodeIds: ['a'] },
      { label: 'Cities', nodeIds: ['b', 'c'] },
    ]);
    expect(an.of(TRACE)?.layout).toEqual({ a: { x: 3, y: 4 } });
    await an.renameGroup(TRACE, 1, 'Big cities');
    await an.ungroup(TRACE, 0);
    expect(graphs.annotations.get(TRACE)?.supernodes).toEqual([{ label: 'Big cities', nodeIds: ['b', 'c'] }]);
    // Every update sends the pins (see the store: an absent field breaks the service).
    expect(api.paramsOf('annotations.update').every((p) => Array.isArray(p.pinned))).toBe(true);
  });

  it('sets and clears labels and notes', async () => {
    const an = useAnnotations();
    await an.setNodeLabel(TRACE, 'E_1_2', 'the cat');
    await an.setNote(TRACE, 'E_1_2', 'check this');
    expect(an.of(TRACE)).toMatchObject({ labels: { E_1_2: 'the cat' }, notes: { E_1_2: 'check this' } });
    await an.setNodeLabel(TRACE, 'E_1_2', '');
    await an.setNote(TRACE, 'E_1_2', '');
    expect(graphs.annotations.get(TRACE)).toMatchObject({ labels: {}, notes: {} });
    expect(an.saving).toBe(false);
  });
});
