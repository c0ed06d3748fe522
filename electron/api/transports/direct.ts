/**
 * The API in-process: the same contract and validation without a transport (the Electron main
 * process behind its IPC bridge, scripts, tests). Results are passed through a JSON round trip
 * so callers see exactly what a remote client would.
 */
import type { ApiClient, ApiEvents, EventName, MethodName, Params, Result } from '../contract.ts';
import type { ApiBackend } from './websocket-server.ts';

export function createDirectClient(backend: ApiBackend): ApiClient {
  const unsubscribers = new Set<() => void>();
  return {
    async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
      const r = await backend.call(method, JSON.parse(JSON.stringify(params ?? {})));
      return (r === undefined ? null : JSON.parse(JSON.stringify(r))) as Result<M>;
    },
    on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
      const off = backend.on(event, (d) => listener(JSON.parse(JSON.stringify(d))));
      unsubscribers.add(off);
      return () => {
        off();
        unsubscribers.delete(off);
      };
    },
    close() {
      for (const off of unsubscribers) off();
      unsubscribers.clear();
    },
  };
}
