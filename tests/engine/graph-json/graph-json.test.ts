import { describe, expect, it } from 'vitest';
import { EngineError } from '../../../electron/engine/errors.ts';
import {
  cantorPair,
  exportGraphJson,
  formatFixed3,
  type GraphExportInput,
  type ImportedGraph,
  importGraphJson,
  logitClerp,
  parseNodeId,
  processToken,
  stringifyGraphDocument,
  toGraphJson,
} from '../../../electron/engine/graph-json/index.ts';
import { pruneGraph } from '../../../electron/engine/pruning/index.ts';
import { handGraph, prng, randomGraph } from '../pruning/helpers.ts';

function handExport(): GraphExportInput {
  const raw = handGraph();
  raw.nodes.promptTokens = ['<bos>', ' The\n'];
  raw.nodes.promptTokenIds = Int32Array.from([2, 651]);
  return {
    raw,
    pruned: pruneGraph(raw),
    labels: new Map([
      ['0_5_1', 'Texas'],
      ['E_651_1', 'the token'],
    ]),
    qParams: { pinnedIds: ['0_5_1'], supernodes: [['state', '0_5_1', '0_9_1']], clickedId: '1_42_1' },
    metadata: {
      slug: 'dallas-austin',
      scan: 'gemma-2-2b',
      prompt: 'The\n',
      transcoderList: [],
      modelId: 'google/gemma-2-2b',
      extra: {
        info: { generator: { name: 'circuit-workbench', version: '0.1.0' }, create_time_ms: 1700000000000 },
        generation_settings: {
          max_n_logits: 10,
          desired_logit_prob: 0.95,
          max_feature_nodes: 7500,
          batch_size: 256,
        },
      },
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the mutators below write arbitrary JSON anywhere in a file
type Loose = any;

function engineError(f: () => unknown): EngineError {
  try {
    f();
  } catch (e) {
    if (!(e instanceof EngineError)) throw e;
    return e;
  }
  throw new Error('expected an EngineError');
}

describe('ids', () => {
  it('Cantor pairing', () => {
    const expected = [
      [0, 0, 0],
      [1, 0, 1],
      [0, 1, 2],
      [2, 0, 3],
      [1, 1, 4],
      [0, 2, 5],
      [3, 1207, 733862],
      [25, 16383, 134_635_819], // 16408·16409/2 + 16383
    ];
    for (const [l, f, v] of expected) expect(cantorPair(l, f)).toBe(v);
    // bijective on a grid
    const seen = new Set<number>();
    for (let l = 0; l < 30; l++) for (let f = 0; f < 300; f++) seen.add(cantorPair(l, f));
    expect(seen.size).toBe(30 * 300);
    expect(engineError(() => cantorPair(-1, 0)).code).toBe('argument');
    expect(engineError(() => cantorPair(0, 2 ** 27)).code).toBe('argument');
  });

  it('parses node ids per feature_type', () => {
    expect(parseNodeId('3_1207_4', 'feature')).toEqual({
      kind: 'feature',
      layer: 3,
      index: 1207,
      position: 4,
      legacy: false,
    });
    expect(parseNodeId('3_-1_4', 'error')).toEqual({
      kind: 'error',
      layer: 3,
      index: -1,
      position: 4,
      legacy: false,
    });
    expect(parseNodeId('0_3_4', 'error')).toEqual({
      kind: 'error',
      layer: 3,
      index: -1,
      position: 4,
      legacy: true,
    });
    expect(parseNodeId('E_651_4', 'token')).toEqual({
      kind: 'token',
      layer: -1,
      index: 651,
      position: 4,
      legacy: false,
    });
    expect(parseNodeId('27_22605_10', 'logit')?.index).toBe(22605);
    for (const bad of [
      '3_-1_4',
      '03_1_2',
      '1_2',
      '1_2_3_4',
      'E_1_2',
      ' 1_2_3',
      '1_2_3\n',
      '1_2_1e3',
      '1_2_9999999999',
    ]) {
      expect(parseNodeId(bad, 'feature')).toBeNull();
    }
    expect(parseNodeId('1_3_4', 'error')).toBeNull();
  });

  it('formats tokens and probabilities like circuit-tracer (Python)', () => {
    expect(processToken('a\nb\tc\r')).toBe('a⏎b→c↵');
    // exact ties go to even, as Python's format does
    expect(formatFixed3(0.0625)).toBe('0.062');
    expect(formatFixed3(0.1875)).toBe('0.188');
    expect(formatFixed3(0.3125)).toBe('0.312');
    expect(formatFixed3(0.8125)).toBe('0.812');
    expect(formatFixed3(0.9375)).toBe('0.938');
    expect(formatFixed3(0.0005)).toBe('0.001');
    expect(formatFixed3(0.123)).toBe('0.123');
    expect(formatFixed3(1)).toBe('1.000');
    expect(formatFixed3(Math.fround(0.45))).toBe('0.450');
    expect(logitClerp(' Austin', 0.75)).toBe('Output " Austin" (p=0.750)');
    expect(logitClerp('\n', 0.0625)).toBe('Output "⏎" (p=0.062)');
  });
});

describe('export', () => {
  it('names transcoders in metadata.transcoder_list, never absolute local paths (issue 14, item 9)', () => {
    const input = handExport();
    input.metadata.transcoderList = [
      '/home/alice/models/gemmascope-transcoders/',
      'C:\\Users\\alice\\clt',
      'mntss/gemma-scope-transcoders',
    ];
    const { graph, json } = exportGraphJson(input);
    expect(graph.metadata.transcoder_list).toEqual([
      'gemmascope-transcoders',
      'clt',
      'mntss/gemma-scope-transcoders',
    ]);
    expect(json).not.toMatch(/alice/);
  });

  it('writes circuit-tracer fields', () => {
    const { graph, json, document } = exportGraphJson(handExport());
    expect(JSON.parse(json)).toEqual(graph);
    expect(Object.keys(graph)).toEqual(['metadata', 'qParams', 'nodes', 'links']);
    expect(Object.keys(graph.metadata)).toEqual([
      'slug',
      'scan',
      'transcoder_list',
      'prompt_tokens',
      'prompt',
      'node_threshold',
      'schema_version',
      'workbench',
      'generation_settings',
      'info',
      'pruning_settings',
    ]);
    expect(graph.metadata.prompt_tokens).toEqual(['<bos>', ' The⏎']);
    expect(graph.metadata.node_threshold).toBe(0.8);
    expect(graph.metadata.pruning_settings).toEqual({ node_threshold: 0.8, edge_threshold: 0.98 });
    expect(graph.metadata.workbench).toEqual({
      model_id: 'google/gemma-2-2b',
      replacement_score: 0.8125,
      completeness_score: document.metadata.workbench!.completeness_score,
    });
    // kept raw nodes [f0, f1, t0, t1, y0, y1]
    expect(graph.nodes.map((n) => n.node_id)).toEqual([
      '0_5_1',
      '0_9_1',
      'E_2_0',
      'E_651_1',
      '2_42_1',
      '2_43_1',
    ]);
    expect(graph.nodes[0]).toEqual({
      node_id: '0_5_1',
      feature: 20, // cantor(0, 5) = 5·6/2 + 5
      layer: '0',
      ctx_idx: 1,
      feature_type: 'cross layer transcoder',
      token_prob: 0,
      is_target_logit: false,
      run_idx: 0,
      reverse_ctx_idx: 0,
      jsNodeId: '0_5-0',
      clerp: 'Texas',
      influence: 0.625,
      activation: 2.5,
    });
    expect(Object.keys(graph.nodes[0])).toEqual([
      'node_id',
      'feature',
      'layer',
      'ctx_idx',
      'feature_type',
      'token_prob',
      'is_target_logit',
      'run_idx',
      'reverse_ctx_idx',
      'jsNodeId',
      'clerp',
      'influence',
      'activation',
    ]);
    expect(graph.nodes[3]).toMatchObject({
      node_id: 'E_651_1',
      feature: 1,
      layer: 'E',
      feature_type: 'embedding',
      jsNodeId: 'E_651-1',
      clerp: 'the token',
      activation: null,
    });
    expect(graph.nodes[4]).toMatchObject({
      node_id: '2_42_1',
      feature: 42,
      layer: '2',
      ctx_idx: 1,
      feature_type: 'logit',
      token_prob: 0.75,
      is_target_logit: true,
      jsNodeId: 'L_42-1',
      clerp: 'Output " Austin" (p=0.750)',
      influence: null,
      activation: null,
    });
    expect(graph.nodes[5]).toMatchObject({ is_target_logit: false, clerp: 'Output " Dallas" (p=0.250)' });
    expect(graph.links).toEqual([
      { source: 'E_2_0', target: '0_5_1', weight: 1 },
      { source: 'E_651_1', target: '0_5_1', weight: 3 },
      { source: 'E_651_1', target: '0_9_1', weight: -2 },
      { source: '0_5_1', target: '2_42_1', weight: 2 },
      { source: '0_9_1', target: '2_42_1', weight: 1 },
      { source: '0_9_1', target: '2_43_1', weight: 3 },
      { source: 'E_651_1', target: '2_43_1', weight: 1 },
    ]);
    expect(graph.qParams).toEqual({
      pinnedIds: ['0_5_1'],
      supernodes: [['state', '0_5_1', '0_9_1']],
      linkType: 'both',
      clickedId: '1_42_1',
      sg_pos: '',
    });
    // one node / link per line: header, 6 nodes, `],"links":[`, 7 links, `]}`, final newline
    const lines = json.split('\n');
    expect(lines.length).toBe(1 + 6 + 1 + 7 + 1 + 1);
    expect(lines[7]).toBe('],"links":[');
    expect(lines.slice(-2)).toEqual([']}', '']);
  });

  it('writes error nodes', () => {
    const input = handExport();
    input.pruned = pruneGraph(input.raw, { nodeThreshold: 1, edgeThreshold: 1 });
    const { graph } = exportGraphJson(input);
    const err = graph.nodes.find((n) => n.feature_type === 'mlp reconstruction error');
    expect(err).toEqual({
      node_id: '0_-1_1',
      feature: -1,
      layer: '0',
      ctx_idx: 1,
      feature_type: 'mlp reconstruction error',
      token_prob: 0,
      is_target_logit: false,
      run_idx: 0,
      reverse_ctx_idx: 0,
      jsNodeId: '0_-1-1',
      clerp: '',
      influence: Math.fround(1.65625 / 1.75),
      activation: null,
    });
  });

  it('rejects clashing extras and bad pruned graphs', () => {
    const input = handExport();
    input.metadata.extra = { slug: 'x' };
    expect(engineError(() => exportGraphJson(input)).code).toBe('argument');
    const bad = handExport();
    bad.pruned = { ...bad.pruned, keptNodes: Int32Array.from([1, 0, 4, 5, 6, 7]) };
    expect(engineError(() => exportGraphJson(bad)).field).toBe('pruned.keptNodes[1]');
    const bad2 = handExport();
    bad2.pruned = {
      ...bad2.pruned,
      keptNodes: bad2.pruned.keptNodes.slice(1),
      nodeInfluence: bad2.pruned.nodeInfluence.slice(1),
    };
    expect(engineError(() => exportGraphJson(bad2)).field).toBe('pruned.edges[0]');
  });
});

describe('round trip', () => {
  it('export → import → export is byte-identical (hand graph)', () => {
    const { json, graph } = exportGraphJson(handExport());
    const imp = importGraphJson(json, { file: 'hand.json' });
    expect(stringifyGraphDocument(imp)).toBe(json);
    expect(toGraphJson(imp)).toEqual(graph);
    expect(imp.conversions).toEqual({ legacyErrorIds: [], notes: [] });
    expect([...imp.labels]).toEqual([
      ['0_5_1', 'Texas'],
      ['E_651_1', 'the token'],
    ]);
    expect(imp.nodes[4].parsed).toEqual({ kind: 'logit', layer: 2, index: 42, position: 1, legacy: false });
    expect(imp.nodeIndex.get('E_651_1')).toBe(3);
    // bytes too
    const again = importGraphJson(new TextEncoder().encode(json));
    expect(stringifyGraphDocument(again)).toBe(json);
  });

  it('export → import → export is byte-identical (random graphs, odd strings)', () => {
    for (const seed of [21, 22]) {
      const raw = randomGraph(seed);
      raw.nodes.promptTokens = ['<bos>', ' "q"', '\\', '\u2028\ud83d\ude00', '\ud800'];
      raw.nodes.logits.token = ['\t', ' x', '"'];
      const pruned = pruneGraph(raw, { nodeThreshold: 0.9, edgeThreshold: 0.99 });
      const { json } = exportGraphJson({
        raw,
        pruned,
        labels: new Map([['E_101_1', 'label with "quotes" and \n newline']]),
        metadata: {
          slug: `random-${seed}`,
          scan: 'test',
          prompt: 'x',
          extra: { z: [1, { b: 2, a: [null, true] }] },
        },
        qParams: { extra: { pruningThreshold: 0.6, clerps: '[]' } },
      });
      const imp = importGraphJson(json);
      expect(imp.links.weight.length).toBe(pruned.edges.weight.length);
      expect(stringifyGraphDocument(imp)).toBe(json);
      expect(stringifyGraphDocument(importGraphJson(stringifyGraphDocument(imp)))).toBe(json);
    }
  });
});

/** A small valid file in circuit-tracer's (current) shape, as a plain object to mutate. */
function baseFile(): Record<string, unknown> {
  return JSON.parse(exportGraphJson(handExport()).json);
}
const text = (o: unknown) => JSON.stringify(o);

describe('older files', () => {
  it('converts the older error id form everywhere and records it', () => {
    const file = {
      metadata: {
        slug: 's',
        scan: 'gemma-2-2b',
        transcoder_list: [],
        prompt_tokens: ['<bos>', 'a', 'b'],
        prompt: 'ab',
      },
      qParams: {
        pinnedIds: ['0_3_2', '3_17_2'],
        supernodes: [['err', '0_3_2']],
        linkType: 'both',
        clickedId: '0_3_2',
        sg_pos: '',
      },
      nodes: [
        {
          node_id: '3_17_2',
          feature: 17 + 10000 * 3,
          layer: '3',
          ctx_idx: 2,
          feature_type: 'cross layer transcoder',
          jsNodeId: '3_17-0',
          clerp: '',
          influence: 0.4,
          activation: 1.5,
        },
        {
          node_id: '0_3_2',
          feature: -1,
          layer: '3',
          ctx_idx: 2,
          feature_type: 'mlp reconstruction error',
          jsNodeId: '3_2-0',
          clerp: '',
          influence: 0.5,
        },
        {
          node_id: '0_3_1',
          feature: -1,
          layer: '3',
          ctx_idx: 1,
          feature_type: 'mlp reconstruction error',
          jsNodeId: '3_1-0',
          clerp: '',
          influence: 0.7,
        },
        {
          node_id: 'E_9_1',
          feature: 1,
          layer: 'E',
          ctx_idx: 1,
          feature_type: 'embedding',
          jsNodeId: 'E_9-1',
          clerp: '',
        },
        {
          node_id: '27_5_2',
          feature: 5,
          layer: '27',
          ctx_idx: 2,
          feature_type: 'logit',
          token_prob: 0.9,
          is_target_logit: true,
          jsNodeId: 'L_5-2',
          clerp: 'Output "x" (p=0.900)',
          vis_link: '',
        },
      ],
      links: [
        { source: '0_3_2', target: '27_5_2', weight: 0.5 },
        { source: '3_17_2', target: '27_5_2', weight: -1.25 },
        { source: 'E_9_1', target: '3_17_2', weight: 2 },
      ],
    };
    const imp = importGraphJson(text(file));
    expect(imp.nodes.map((n) => n.node_id)).toEqual(['3_17_2', '3_-1_2', '3_-1_1', 'E_9_1', '27_5_2']);
    expect(imp.conversions.legacyErrorIds).toEqual([
      ['0_3_2', '3_-1_2'],
      ['0_3_1', '3_-1_1'],
    ]);
    expect(imp.conversions.notes.join('\n')).toMatch(/older form/);
    expect(imp.conversions.notes.join('\n')).toMatch(/schema_version was missing/);
    expect(imp.conversions.notes.join('\n')).toMatch(/unknown node field "vis_link"/);
    expect(imp.qParams.pinnedIds).toEqual(['3_-1_2', '3_17_2']);
    expect(imp.qParams.supernodes).toEqual([['err', '3_-1_2']]);
    expect(imp.qParams.clickedId).toBe('3_-1_2');
    expect(imp.nodes[imp.links.source[0]].node_id).toBe('3_-1_2');
    // the feature value of older files (offset scheme, not Cantor) is kept as written
    expect(imp.nodes[0].feature).toBe(30017);
    expect(imp.nodes[1].parsed).toEqual({ kind: 'error', layer: 3, index: -1, position: 2, legacy: false });
    const out = stringifyGraphDocument(imp);
    expect(out).not.toMatch(/"0_3_2"/);
    expect(stringifyGraphDocument(importGraphJson(out))).toBe(out);
    expect(importGraphJson(out).conversions.legacyErrorIds).toEqual([]);
  });

  it('accepts Neuronpedia URL-style qParams (comma list, JSON string)', () => {
    const f = baseFile();
    f.qParams = {
      pinnedIds: '0_5_1,E_2_0',
      supernodes: '[["s","0_5_1"]]',
      linkType: 'both',
      clickedId: '',
      sg_pos: '',
    };
    const imp = importGraphJson(text(f));
    expect(imp.qParams.pinnedIds).toEqual(['0_5_1', 'E_2_0']);
    expect(imp.qParams.supernodes).toEqual([['s', '0_5_1']]);
    expect(imp.conversions.notes.length).toBe(2);
  });
});

describe('malformed input', () => {
  type Case = [name: string, input: string | Uint8Array, code: string, field: string | RegExp];
  const mut = (f: (o: Loose) => void) => {
    const o = baseFile();
    f(o);
    return text(o);
  };
  const cases: Case[] = [
    ['not JSON', '{"metadata": ', 'header', '(root)'],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0xff, 0x7d]), 'header', '(root)'],
    ['root is an array', '[]', 'header', '(root)'],
    ['metadata missing', mut((o) => delete o.metadata), 'missing', 'metadata'],
    ['slug not a string', mut((o) => (o.metadata.slug = 3)), 'header', 'metadata.slug'],
    [
      'prompt_tokens entry',
      mut((o) => (o.metadata.prompt_tokens[1] = null)),
      'header',
      'metadata.prompt_tokens[1]',
    ],
    [
      'schema_version 2',
      mut((o) => (o.metadata.schema_version = 2)),
      'unsupported',
      'metadata.schema_version',
    ],
    ['nodes not an array', mut((o) => (o.nodes = {})), 'header', 'nodes'],
    ['node not an object', mut((o) => (o.nodes[1] = 'x')), 'header', 'nodes[1]'],
    ['duplicate node id', mut((o) => (o.nodes[1] = { ...o.nodes[0] })), 'config', 'nodes[1].node_id'],
    ['node id vs type', mut((o) => (o.nodes[2].node_id = '0_2_0')), 'config', 'nodes[2].node_id'],
    [
      'unknown feature_type',
      mut((o) => (o.nodes[0].feature_type = 'lorsa')),
      'config',
      'nodes[0].feature_type',
    ],
    ['ctx_idx out of range', mut((o) => (o.nodes[0].ctx_idx = 5)), 'config', 'nodes[0].ctx_idx'],
    ['ctx_idx vs id', mut((o) => (o.nodes[0].ctx_idx = 0)), 'config', 'nodes[0].ctx_idx'],
    ['layer vs id', mut((o) => (o.nodes[0].layer = '1')), 'config', 'nodes[0].layer'],
    ['feature not an integer', mut((o) => (o.nodes[0].feature = 1.5)), 'config', 'nodes[0].feature'],
    ['influence a string', mut((o) => (o.nodes[0].influence = '0.3')), 'header', 'nodes[0].influence'],
    [
      'is_target_logit a number',
      mut((o) => (o.nodes[4].is_target_logit = 1)),
      'header',
      'nodes[4].is_target_logit',
    ],
    ['link to a missing node', mut((o) => (o.links[0].target = '0_6_1')), 'config', 'links[0].target'],
    ['link from a logit', mut((o) => (o.links[0].source = '2_43_1')), 'config', 'links[0].source'],
    ['link into a token', mut((o) => (o.links[0].target = 'E_2_0')), 'config', 'links[0].target'],
    [
      'infinite weight',
      mut((o) => (o.links[2].weight = 'INF')).replace('"INF"', '1e999'),
      'config',
      'links[2].weight',
    ],
    ['missing weight', mut((o) => delete o.links[3].weight), 'missing', 'links[3].weight'],
    ['duplicate link', mut((o) => o.links.push({ ...o.links[1] })), 'config', 'links[7]'],
    [
      '__proto__ in metadata',
      mut(() => {}).replace('"metadata":{', '"metadata":{"__proto__":{"x":1},'),
      'config',
      'metadata.__proto__',
    ],
    [
      '__proto__ in a node',
      mut(() => {}).replace('{"node_id":"0_9_1"', '{"__proto__":null,"node_id":"0_9_1"'),
      'config',
      'nodes[1].__proto__',
    ],
    [
      '__proto__ deep in extras',
      mut((o) => (o.metadata.info = { a: [{ b: 'PROTO' }] })).replace(
        '"b":"PROTO"',
        '"__proto__":{"polluted":true}',
      ),
      'config',
      'metadata.info.a[0].__proto__',
    ],
    ['pinnedIds entry a number', mut((o) => (o.qParams.pinnedIds = [1])), 'header', 'qParams.pinnedIds[0]'],
    ['empty supernode group', mut((o) => (o.qParams.supernodes = [[]])), 'config', 'qParams.supernodes[0]'],
    [
      'logit layers differ',
      mut((o) => {
        o.nodes[5].node_id = '3_43_1';
        o.nodes[5].layer = '3';
        o.links[5].target = '3_43_1';
        o.links[6].target = '3_43_1';
      }),
      'config',
      'nodes[5].layer',
    ],
  ];

  it(`gives a typed error naming the field (${cases.length} cases)`, () => {
    for (const [name, input, code, field] of cases) {
      const e = engineError(() => importGraphJson(input, { file: 'bad.json' }));
      expect([name, e.code], e.message).toEqual([name, code]);
      if (typeof field === 'string') expect([name, e.field]).toEqual([name, field]);
      else expect(e.field).toMatch(field);
      expect(e.message).toContain('bad.json');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('enforces configurable limits', () => {
    const json = exportGraphJson(handExport()).json;
    const lim = (limits: object) => engineError(() => importGraphJson(json, { limits }));
    expect(lim({ maxNodes: 5 })).toMatchObject({ code: 'config', field: 'nodes' });
    expect(lim({ maxLinks: 6 })).toMatchObject({ code: 'config', field: 'links' });
    expect(lim({ maxStringLength: 8 })).toMatchObject({ code: 'config', field: 'metadata.slug' });
    expect(lim({ maxChars: 100 })).toMatchObject({ code: 'config', field: '(root)' });
    expect(lim({ maxDepth: 1 })).toMatchObject({ code: 'config', field: 'metadata.info.generator.name' });
    expect(lim({ maxExtraValues: 3 }).code).toBe('config');
    expect(lim({ maxNodes: -1 }).code).toBe('argument');
    const deep = json.replace('"metadata":{', `"metadata":{"deep":${'['.repeat(100)}${']'.repeat(100)},`);
    expect(engineError(() => importGraphJson(deep))).toMatchObject({ code: 'config' });
  });
});

describe('fuzz', () => {
  it('mutated files give EngineErrors only, and whatever imports re-exports stably', () => {
    const rand = prng(1234);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
    const valid = exportGraphJson(handExport()).json;
    const weird: unknown[] = [
      null,
      true,
      0,
      -1,
      1.5,
      1e300,
      '',
      'x',
      '0_5_1',
      [],
      {},
      [[]],
      { __proto__: 1 },
    ];
    /** Object-level mutation: replace, delete or add a value at a random path. */
    const mutateObject = (root: Loose) => {
      let parent: Loose = null;
      let key: string | number = '';
      let cur: Loose = root;
      const depth = 1 + Math.floor(rand() * 4);
      for (let d = 0; d < depth && cur !== null && typeof cur === 'object'; d++) {
        const keys = Object.keys(cur);
        if (keys.length === 0) break;
        key = pick(keys);
        parent = cur;
        cur = cur[key];
      }
      if (parent === null) return;
      const op = Math.floor(rand() * 4);
      if (op === 0) delete parent[key];
      else if (op === 1) parent[key] = pick(weird);
      else if (op === 2 && Array.isArray(parent)) parent.push(structuredClone(pick(parent)));
      else parent[`k${Math.floor(rand() * 3)}`] = pick(weird);
    };
    /** Text-level mutation: flip, insert or delete characters, or truncate. */
    const mutateText = (s: string) => {
      const chars = '{}[]",:-0123456789e.E+ \\nul_trfasE';
      const at = Math.floor(rand() * s.length);
      switch (Math.floor(rand() * 4)) {
        case 0:
          return s.slice(0, at) + pick(chars.split('')) + s.slice(at + 1);
        case 1:
          return s.slice(0, at) + pick(chars.split('')) + s.slice(at);
        case 2:
          return s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 8));
        default:
          return s.slice(0, at);
      }
    };
    const outcomes = new Map<string, number>();
    for (let trial = 0; trial < 400; trial++) {
      let input: string;
      if (trial % 2 === 0) {
        const o = JSON.parse(valid);
        for (let k = 0, n = 1 + Math.floor(rand() * 3); k < n; k++) mutateObject(o);
        input = JSON.stringify(o);
      } else {
        input = valid;
        for (let k = 0, n = 1 + Math.floor(rand() * 3); k < n; k++) input = mutateText(input);
      }
      let imp: ImportedGraph;
      try {
        imp = importGraphJson(input, { file: `fuzz-${trial}` });
      } catch (e) {
        if (!(e instanceof EngineError))
          throw new Error(`trial ${trial}: non-EngineError ${(e as Error)?.stack}`);
        expect(e.message).toContain(`fuzz-${trial}`);
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
        continue;
      }
      outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      const out = stringifyGraphDocument(imp);
      expect(stringifyGraphDocument(importGraphJson(out))).toBe(out);
    }
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(10);
    expect(outcomes.get('header') ?? 0).toBeGreaterThan(10);
    expect(outcomes.get('config') ?? 0).toBeGreaterThan(10);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
