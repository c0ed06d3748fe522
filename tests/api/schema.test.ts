/** Validation at the boundary: typed, strict, with the offending field named. */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { PARAMS, parseParams } from '../../electron/api/schema.ts';
import {
  array,
  int,
  object,
  oneOf,
  optional,
  record,
  SchemaError,
  string,
} from '../../electron/api/validator.ts';
import { tempDir } from '../store/helpers.ts';
import { type Harness, harness, rejection } from './helpers.ts';

const cache = tempDir('cw-schema-cache-');
let h: Harness | undefined;
afterAll(async () => {
  if (h) {
    await h.close();
    fs.rmSync(h.dir, { recursive: true, force: true });
  }
  cache.cleanup();
});

function fails(fn: () => unknown): SchemaError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SchemaError) return e;
    throw e;
  }
  throw new Error('expected a SchemaError');
}

describe('validator', () => {
  const s = object({
    name: string({ min: 1, max: 5 }),
    n: optional(int({ min: 0, max: 3 })),
    kind: optional(oneOf(['a', 'b'] as const)),
    list: optional(array(object({ x: int() }), { max: 2 })),
    map: optional(record(int(), { maxKeys: 2 })),
  });

  it('accepts valid values and drops nothing it knows', () => {
    expect(s.parse({ name: 'abc', n: 2, kind: 'a', list: [{ x: 1 }], map: { k: 1 } })).toEqual({
      name: 'abc',
      n: 2,
      kind: 'a',
      list: [{ x: 1 }],
      map: { k: 1 },
    });
    expect(s.parse({ name: 'x' })).toEqual({ name: 'x' });
  });

  it('names the field and says what was expected', () => {
    expect(fails(() => s.parse({ name: 'abcdef' })).message).toBe(
      'name must be a string of 1 to 5 characters (got "abcdef")',
    );
    expect(fails(() => s.parse({})).message).toBe('name is required (a string of 1 to 5 characters)');
    expect(fails(() => s.parse({ name: 'a', n: 1.5 })).path).toBe('n');
    expect(fails(() => s.parse({ name: 'a', n: 4 })).message).toBe('n must be an integer in [0, 3] (got 4)');
    expect(fails(() => s.parse({ name: 'a', kind: 'c' })).message).toBe(
      'kind must be one of "a", "b" (got "c")',
    );
    expect(fails(() => s.parse({ name: 'a', list: [{ x: 1 }, { x: 'y' }] })).path).toBe('list[1].x');
    expect(fails(() => s.parse({ name: 'a', list: [{}, {}, {}] })).path).toBe('list');
    expect(fails(() => s.parse({ name: 'a', nmae: 1 })).message).toMatch(
      /^nmae is not a known field; known fields: name, n/,
    );
    expect(fails(() => s.parse({ name: 'a', map: { a: 1, b: 2, c: 3 } })).path).toBe('map');
    expect(fails(() => s.parse({ name: 'a', map: JSON.parse('{"__proto__": 1}') })).message).toMatch(
      /not allowed/,
    );
    expect(fails(() => s.parse([])).message).toMatch(/must be an object/);
    expect(fails(() => s.parse({ name: 'a', n: Number.NaN })).path).toBe('n');
  });

  it('every method has a schema; params are checked against the contract', () => {
    expect(Object.keys(PARAMS)).toHaveLength(45); // `satisfies` in schema.ts makes the keys those of ApiMethods
    expect(parseParams('graphs.view', { traceId: 3, nodeThreshold: 0.5 })).toEqual({
      traceId: 3,
      nodeThreshold: 0.5,
    });
    expect(parseParams('projects.list', undefined)).toEqual({});
    expect(fails(() => parseParams('graphs.view', { traceId: 0 })).message).toBe(
      'traceId must be an integer ≥ 1 (got 0)',
    );
    expect(
      fails(() => parseParams('traces.start', { modelId: 1, settings: { nodeThreshold: 2 } })).path,
    ).toBe('settings.nodeThreshold');
    expect(
      fails(() => parseParams('traces.start', { modelId: 1, settings: { desiredLogitProb: 0 } })).message,
    ).toBe('settings.desiredLogitProb must be greater than 0');
    expect(fails(() => parseParams('traces.tag', { id: 1, add: [' padded'] })).path).toBe('add[0]');
    expect(fails(() => parseParams('annotations.update', { traceId: 1, pinned: ['3_x_1'] })).message).toMatch(
      /pinned\[0\] must be a graph node id/,
    );
    expect(
      parseParams('annotations.update', { traceId: 1, pinned: ['3_12_4', '0_-1_2', 'E_651_0'] }).pinned,
    ).toHaveLength(3);
  });
});

describe('errors through the service', () => {
  it('are typed and readable', async () => {
    h = harness(cache.dir, { runJobs: false });
    const c = h.client;
    expect(await rejection(c.call('graphs.view', { traceId: 'x' } as never))).toMatchObject({
      code: 'invalid_params',
      field: 'traceId',
      message: 'invalid params: traceId must be an integer ≥ 1 (got "x")',
    });
    expect(await rejection(c.call('no.such' as never, {} as never))).toMatchObject({
      code: 'unknown_method',
    });
    expect(await rejection(c.call('traces.get', { id: 12345 }))).toMatchObject({
      code: 'not_found',
      message: 'trace 12345 does not exist',
    });
    expect(await rejection(c.call('traces.start', { modelId: 1 }))).toMatchObject({
      code: 'invalid_params',
      message: 'invalid params: give prompt or tokenIds',
    });
    await c.call('projects.create', { name: 'A' });
    expect(await rejection(c.call('projects.create', { name: 'a' }))).toMatchObject({ code: 'conflict' });
    expect(await rejection(c.call('projects.create', { name: '   ' }))).toMatchObject({
      code: 'invalid_params',
      field: 'name',
    });
  });
});
