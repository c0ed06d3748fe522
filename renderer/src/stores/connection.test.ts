/** The connection store follows the client's status and refreshes the server info on each (re)connect. */
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApi } from '../api/fake-client.ts';
import { provideApi } from '../api/inject.ts';
import type { ServerInfo } from '../api/types.ts';
import { useConnection } from './connection.ts';

const INFO: ServerInfo = { app: 'circuit-workbench', apiVersion: 1, schemaVersion: 3, dataDir: '/data' };
const flush = () => new Promise((r) => setTimeout(r, 0));
let api: FakeApi;

beforeEach(() => {
  api = new FakeApi();
  provideApi(api);
  setActivePinia(createPinia());
});

describe('connection store', () => {
  it('reads the server info when open and again after every reconnect, not while connecting', async () => {
    api.handle('server.info', () => INFO);
    api.setStatus({ state: 'connecting', detail: 'ws://x' });
    const conn = useConnection();
    let opened = 0;
    conn.watchClient(() => opened++);
    await flush();
    expect(api.paramsOf('server.info')).toHaveLength(0);
    api.setStatus({ state: 'open', detail: 'API v1' });
    await flush();
    expect([conn.info, conn.status.state, opened]).toEqual([INFO, 'open', 1]);

    api.setStatus({ state: 'connecting', detail: 'connection lost, reconnecting…' });
    expect(conn.status.detail).toBe('connection lost, reconnecting…');
    api.setStatus({ state: 'open', detail: 'API v1' });
    // A second 'open' while open is no reconnect.
    api.setStatus({ state: 'open', detail: 'API v1' });
    await flush();
    expect([api.paramsOf('server.info').length, opened]).toEqual([2, 2]);
  });

  it('shows why the server info could not be read', async () => {
    api.handle('server.info', () => {
      throw new Error('unauthorized');
    });
    const conn = useConnection();
    let opened = 0;
    conn.watchClient(() => opened++);
    await flush();
    expect([conn.error, opened]).toEqual(['unauthorized', 0]);
  });
});
