/** The connection to the backend: state shown in the header, and the server's info. */
import { defineStore } from 'pinia';
import { api, errorMessage } from '../api/inject.ts';
import type { ConnectionStatus } from '../api/transport.ts';
import type { ServerInfo } from '../api/types.ts';

export const useConnection = defineStore('connection', {
  state: () => ({
    status: { state: 'connecting', detail: '' } as ConnectionStatus,
    info: null as ServerInfo | null,
    error: null as string | null,
  }),
  actions: {
    /** Follows the client's status; refreshes the server info on every (re)connect. */
    watchClient(onOpen: () => void): void {
      const client = api();
      this.status = client.status;
      const opened = async () => {
        try {
          this.info = await client.call('server.info', {});
          this.error = null;
          onOpen();
        } catch (e) {
          this.error = errorMessage(e);
        }
      };
      client.onStatus((s) => {
        const wasOpen = this.status.state === 'open';
        this.status = s;
        if (s.state === 'open' && !wasOpen) void opened();
      });
      if (client.status.state === 'open') void opened();
    },
  },
});
