/**
 * The injected API client. main.ts chooses the transport (Electron bridge or WebSocket) and
 * sets it before anything else runs; stores read it through `api()`.
 */
import type { ManagedClient } from './transport.ts';

let current: ManagedClient | null = null;

export function provideApi(client: ManagedClient): void {
  current = client;
}

export function api(): ManagedClient {
  if (!current) throw new Error('the API client is not set up (provideApi was not called)');
  return current;
}

/** The human-readable message of any error an API call can throw. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
