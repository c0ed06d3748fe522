/**
 * Model validation off the event loop (issue 14, item 4): models.register opens checkpoints
 * synchronously (headers, sampled hashes, folder walks). A check that takes seconds runs on a
 * worker thread, so /health and other calls keep answering while it runs; a check past its time
 * limit is stopped with `unavailable`.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkModelFolders, checkModelFoldersOffThread } from '../../electron/api/model-check.ts';
import { WorkbenchService } from '../../electron/api/service.ts';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import { type RunningApiServer, startApiServer } from '../../electron/api/transports/websocket-server.ts';
import { MAX_HEADER_ENTRIES } from '../../electron/engine/checkpoint/safetensors.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { Store } from '../../electron/store/store.ts';
import { tempDir } from '../store/helpers.ts';
import { rejection, TINY } from './helpers.ts';

const tmp = tempDir('cw-model-check-');
let slowCheckpoint: string;
let store: Store;
let service: WorkbenchService;
let server: RunningApiServer;

/** A safetensors file of `n` one-float tensors: each header entry costs parsing time. */
function manyEntries(file: string, n: number, prefix: string): void {
  const parts: string[] = [];
  for (let i = 0; i < n; i++)
    parts.push(`"${prefix}${i}":{"dtype":"F32","shape":[1],"data_offsets":[${i * 4},${i * 4 + 4}]}`);
  const json = Buffer.from(`{${parts.join(',')}}`);
  const buf = Buffer.alloc(8 + json.length + n * 4);
  buf.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(buf, 8);
  fs.writeFileSync(file, buf);
}

beforeAll(async () => {
  // A checkpoint that is slow to check but within every limit: three shards of headers just
  // under the entry limit (each is parsed in full), then missing tensors are reported.
  slowCheckpoint = path.join(tmp.dir, 'slow');
  fs.mkdirSync(slowCheckpoint);
  fs.copyFileSync(path.join(TINY.checkpointDir(), 'config.json'), path.join(slowCheckpoint, 'config.json'));
  for (let s = 0; s < 3; s++)
    manyEntries(path.join(slowCheckpoint, `part-${s}.safetensors`), MAX_HEADER_ENTRIES - 10, `s${s}.t`);
  store = Store.open(path.join(tmp.dir, 'data'));
  service = new WorkbenchService({
    store,
    compute: new InProcessCompute({ cacheRoot: path.join(tmp.dir, 'cache') }),
  }).start();
  server = await startApiServer({ backend: service, port: 0 });
});
afterAll(async () => {
  await server.close();
  await service.close();
  store.close();
  tmp.cleanup();
});

/** Milliseconds one GET /health takes. */
function healthLatency(url: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(`${url}health`, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t0));
      })
      .on('error', reject);
  });
}

describe('model validation runs off the event loop', () => {
  it('/health keeps answering while a slow models.register runs', async () => {
    // How long the same check holds the thread it runs on.
    let t0 = performance.now();
    const inline = checkModelFolders({ checkpointDir: slowCheckpoint, transcoderDir: TINY.transcoderDir() });
    const inlineMs = performance.now() - t0;
    expect(inline.validation.valid).toBe(false);
    expect(inlineMs).toBeGreaterThan(800); // else this test could not tell a blocked loop

    const client = await connectApi(server.wsUrl);
    try {
      t0 = performance.now();
      let registering = true;
      const registered = client
        .call('models.register', { checkpointDir: slowCheckpoint, transcoderDir: TINY.transcoderDir() })
        .finally(() => {
          registering = false;
        });
      const latencies: number[] = [];
      while (registering) {
        latencies.push(await healthLatency(server.url));
        await new Promise((r) => setTimeout(r, 20));
      }
      const record = await registered;
      const registerMs = performance.now() - t0;
      expect(record.validation.valid).toBe(false);
      expect(record.validation.problems[0]).toMatchObject({ code: 'missing' });
      expect(latencies.length).toBeGreaterThan(5);
      const worst = Math.max(...latencies);
      console.log(
        `check inline ${inlineMs.toFixed(0)} ms; models.register ${registerMs.toFixed(0)} ms; ` +
          `${latencies.length} /health calls meanwhile, worst ${worst.toFixed(0)} ms`,
      );
      // On the main thread /health would wait for the whole check (> inlineMs).
      expect(worst).toBeLessThan(Math.min(500, inlineMs / 2));
    } finally {
      client.close();
    }
  });

  it('a check past its time limit is stopped with unavailable', async () => {
    const t0 = performance.now();
    const e = await rejection(
      checkModelFoldersOffThread({ checkpointDir: slowCheckpoint, transcoderDir: TINY.transcoderDir() }, 100),
    );
    expect(e).toMatchObject({ code: 'unavailable' });
    expect(e.message).toMatch(/took longer than 0\.1 s and was stopped/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('a fast check gives the same record on the thread as inline; checks queue on one thread', async () => {
    const dirs = { checkpointDir: TINY.checkpointDir(), transcoderDir: TINY.transcoderDir() };
    const threaded = await checkModelFoldersOffThread(dirs);
    expect(threaded.validation.valid).toBe(true);
    expect(threaded).toEqual(checkModelFolders(dirs));
    // three at once on the warm thread, each answered with its own folders
    const names = ['a', 'b', 'c'];
    const records = await Promise.all(names.map((name) => checkModelFoldersOffThread({ ...dirs, name })));
    expect(records.map((r) => r.name)).toEqual(names);
  });
});
