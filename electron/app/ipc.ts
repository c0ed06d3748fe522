/**
 * The API over Electron IPC, main side. One `ipcMain.handle` channel per contract method; each
 * handler checks that the call comes from the app's own page, validates the params with the
 * contract's schema (electron/api/schema.ts), applies the desktop's file-path policy, then
 * calls the in-process client (transports/direct.ts, the same contract the WebSocket server
 * carries). Replies are envelopes: `{ok: true, result}` or `{ok: false, error: ApiErrorData}`
 * with the typed error code — never a thrown error, which Electron would flatten.
 *
 * File paths: the only method that takes one is models.register. From the renderer it is
 * accepted only with folders the main process handed out through its own folder dialog
 * (`circuit:desktop:pickFolder`, remembered per window); the main process's own menu flow
 * calls the backend directly.
 */
import path from 'node:path';
import type { ApiClient, EventName, MethodName, Params } from '../api/contract.ts';
import { ApiError, toApiError } from '../api/errors.ts';
import { parseParams } from '../api/schema.ts';
import {
  API_EVENTS,
  API_METHODS,
  EVENT_CHANNEL,
  FOLDER_PURPOSES,
  type FolderPurpose,
  type IpcReply,
  methodChannel,
  PICK_FOLDER_CHANNEL,
} from './channels.ts';
import type { IpcMain, IpcMainInvokeEvent } from './electron-types.ts';

/** Folders the main process's dialogs returned, per renderer (webContents id). */
export class PathGrants {
  private readonly byOwner = new Map<number, Set<string>>();

  grant(owner: number, folder: string): string {
    const p = path.resolve(folder);
    let set = this.byOwner.get(owner);
    if (!set) {
      set = new Set();
      this.byOwner.set(owner, set);
    }
    set.add(p);
    return p;
  }

  has(owner: number, folder: string): boolean {
    return this.byOwner.get(owner)?.has(path.resolve(folder)) ?? false;
  }

  forget(owner: number): void {
    this.byOwner.delete(owner);
  }
}

/** The desktop's rule for paths in params: only folders granted to this renderer. */
export function checkPathPolicy<M extends MethodName>(
  method: M,
  params: Params<M>,
  owner: number,
  grants: PathGrants,
): void {
  if (method !== 'models.register') return;
  const p = params as Params<'models.register'>;
  for (const field of ['checkpointDir', 'transcoderDir'] as const) {
    if (!grants.has(owner, p[field])) {
      throw new ApiError(
        'unauthorized',
        `${field}: in the desktop app a folder must be chosen in the folder dialog (File › Register model…), not typed`,
        { field },
      );
    }
  }
}

export interface ApiIpcOptions {
  client: ApiClient;
  grants: PathGrants;
  /** Whether an IPC message comes from one of the app's own pages. */
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean;
}

/** Handles one call: the body of every method channel (exported for the tests). */
export async function handleApiCall(
  method: MethodName,
  event: IpcMainInvokeEvent,
  args: unknown[],
  opts: ApiIpcOptions,
): Promise<IpcReply> {
  try {
    if (!opts.isTrustedSender(event)) {
      throw new ApiError('unauthorized', `${method}: the call does not come from the app's own page`);
    }
    if (args.length > 1)
      throw new ApiError('invalid_params', `invalid params: ${method} takes one params object`);
    const params = parseParams(method, args[0]);
    checkPathPolicy(method, params, event.sender.id, opts.grants);
    const result = await opts.client.call(method, params);
    return { ok: true, result: result ?? null };
  } catch (e) {
    return { ok: false, error: toApiError(e).toJSON() };
  }
}

/** Registers every method's channel; returns the function that removes them. */
export function registerApiIpc(ipcMain: IpcMain, opts: ApiIpcOptions): () => void {
  for (const method of API_METHODS) {
    ipcMain.handle(methodChannel(method), (event, ...args: unknown[]) =>
      handleApiCall(method, event, args, opts),
    );
  }
  return () => {
    for (const method of API_METHODS) ipcMain.removeHandler(methodChannel(method));
  };
}

/** Forwards every contract event to the renderers `targets()` returns. */
export function forwardApiEvents(
  client: ApiClient,
  targets: () => Iterable<{ send(channel: string, ...args: unknown[]): void; isDestroyed(): boolean }>,
): () => void {
  const offs = API_EVENTS.map((name: EventName) =>
    client.on(name, (data) => {
      for (const wc of targets()) if (!wc.isDestroyed()) wc.send(EVENT_CHANNEL, name, data);
    }),
  );
  return () => {
    for (const off of offs) off();
  };
}

export interface PickFolderOptions {
  grants: PathGrants;
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean;
  /** Opens the folder dialog (parented to the sender's window); null when cancelled. */
  showFolderDialog: (event: IpcMainInvokeEvent, purpose: FolderPurpose) => Promise<string | null>;
}

export async function handlePickFolder(
  event: IpcMainInvokeEvent,
  args: unknown[],
  opts: PickFolderOptions,
): Promise<IpcReply> {
  try {
    if (!opts.isTrustedSender(event)) {
      throw new ApiError('unauthorized', "pickFolder: the call does not come from the app's own page");
    }
    const purpose = args[0];
    if (args.length !== 1 || !(FOLDER_PURPOSES as readonly unknown[]).includes(purpose)) {
      throw new ApiError(
        'invalid_params',
        `invalid params: purpose must be one of ${FOLDER_PURPOSES.join(', ')}`,
        {
          field: 'purpose',
        },
      );
    }
    const chosen = await opts.showFolderDialog(event, purpose as FolderPurpose);
    return { ok: true, result: chosen === null ? null : opts.grants.grant(event.sender.id, chosen) };
  } catch (e) {
    return { ok: false, error: toApiError(e).toJSON() };
  }
}

export function registerDesktopIpc(ipcMain: IpcMain, opts: PickFolderOptions): () => void {
  ipcMain.handle(PICK_FOLDER_CHANNEL, (event, ...args: unknown[]) => handlePickFolder(event, args, opts));
  return () => ipcMain.removeHandler(PICK_FOLDER_CHANNEL);
}
