/**
 * The preload's bridge (runs in the sandboxed renderer's isolated world, bundled to CommonJS by
 * build.ts). It exposes exactly two objects to the page, built from plain closures so nothing of
 * `ipcRenderer` (or an IPC event, whose `.sender` is ipcRenderer) ever reaches it:
 *
 *   window.circuitApi      the contract's ApiClient: call(method, params), on(event, listener), close()
 *   window.circuitDesktop  the desktop shell: onMenuCommand(listener), pickFolder(purpose)
 *
 * Errors: a failed call rejects with an Error carrying the backend's message (and, within this
 * world, code/field/engineCode). Note that Electron's contextBridge copies only the message of
 * an Error into the page's world.
 */
import type {
  ApiClient,
  ApiErrorData,
  ApiEvents,
  EventName,
  MethodName,
  Params,
  Result,
} from '../api/contract.ts';
import {
  API_GLOBAL,
  DESKTOP_GLOBAL,
  type DesktopBridge,
  EVENT_CHANNEL,
  FOLDER_PURPOSES,
  type FolderPurpose,
  type IpcReply,
  isApiEvent,
  isApiMethod,
  isMenuCommand,
  MENU_CHANNEL,
  type MenuCommand,
  methodChannel,
  PICK_FOLDER_CHANNEL,
} from './channels.ts';

/** The part of ipcRenderer the bridge uses. */
export interface BridgeIpc {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

export interface BridgeContext {
  exposeInMainWorld(key: string, api: unknown): void;
}

export interface BridgeError extends Error {
  code: ApiErrorData['code'];
  field?: string;
  engineCode?: string;
}

export function bridgeError(data: ApiErrorData): BridgeError {
  const e = new Error(data.message) as BridgeError;
  e.name = 'ApiError';
  e.code = data.code;
  if (data.field !== undefined) e.field = data.field;
  if (data.engineCode !== undefined) e.engineCode = data.engineCode;
  return e;
}

function unwrap(reply: unknown): unknown {
  const r = reply as IpcReply | null;
  if (r && typeof r === 'object' && r.ok === true) return r.result;
  if (r && typeof r === 'object' && r.ok === false && r.error && typeof r.error.message === 'string') {
    throw bridgeError(r.error);
  }
  throw bridgeError({ code: 'internal', message: 'internal error: a malformed reply from the main process' });
}

export interface Bridges {
  api: ApiClient;
  desktop: DesktopBridge;
}

/** Builds the two exposed objects over `ipc` (one IPC listener per channel, set up here). */
export function createBridges(ipc: BridgeIpc): Bridges {
  const eventListeners = new Map<EventName, Set<(data: unknown) => void>>();
  const menuListeners = new Set<(c: MenuCommand) => void>();
  let closed = false;

  ipc.on(EVENT_CHANNEL, (_event, name, data) => {
    if (closed || !isApiEvent(name)) return;
    for (const l of eventListeners.get(name) ?? []) {
      try {
        l(data);
      } catch (e) {
        console.error(`a listener of ${name} failed`, e);
      }
    }
  });
  ipc.on(MENU_CHANNEL, (_event, command) => {
    if (!isMenuCommand(command)) return;
    for (const l of menuListeners) {
      try {
        l(command);
      } catch (e) {
        console.error(`a listener of the menu command ${command.command} failed`, e);
      }
    }
  });

  /** ipcRenderer.invoke, its own failures as typed errors (params that cannot be cloned, no handler). */
  const invoke = async (channel: string, arg: unknown): Promise<unknown> => {
    try {
      return await ipc.invoke(channel, arg);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw /could not be cloned/i.test(message)
        ? bridgeError({ code: 'invalid_params', message: `invalid params: ${message}` })
        : bridgeError({ code: 'unavailable', message: `the backend is not available: ${message}` });
    }
  };

  const api: ApiClient = {
    async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
      if (closed) throw bridgeError({ code: 'unavailable', message: 'the client is closed' });
      if (!isApiMethod(method)) {
        throw bridgeError({
          code: 'unknown_method',
          message: `unknown method "${String(method).slice(0, 80)}"`,
        });
      }
      return unwrap(await invoke(methodChannel(method), params ?? {})) as Result<M>;
    },
    on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
      if (!isApiEvent(event))
        throw bridgeError({ code: 'invalid_params', message: `unknown event "${String(event)}"` });
      if (typeof listener !== 'function')
        throw bridgeError({ code: 'invalid_params', message: 'listener must be a function' });
      let set = eventListeners.get(event);
      if (!set) {
        set = new Set();
        eventListeners.set(event, set);
      }
      const l = listener as (data: unknown) => void;
      set.add(l);
      return () => {
        set.delete(l);
      };
    },
    close() {
      closed = true;
      eventListeners.clear();
    },
  };

  const desktop: DesktopBridge = {
    onMenuCommand(listener) {
      if (typeof listener !== 'function')
        throw bridgeError({ code: 'invalid_params', message: 'listener must be a function' });
      menuListeners.add(listener);
      return () => {
        menuListeners.delete(listener);
      };
    },
    async pickFolder(purpose: FolderPurpose) {
      if (!(FOLDER_PURPOSES as readonly unknown[]).includes(purpose)) {
        throw bridgeError({
          code: 'invalid_params',
          message: `purpose must be one of ${FOLDER_PURPOSES.join(', ')}`,
          field: 'purpose',
        });
      }
      const r = unwrap(await invoke(PICK_FOLDER_CHANNEL, purpose));
      return typeof r === 'string' ? r : null;
    },
  };

  return { api, desktop };
}

/** The preload's whole job: expose the two bridges, and nothing else. */
export function exposeBridges(contextBridge: BridgeContext, ipc: BridgeIpc): void {
  const { api, desktop } = createBridges(ipc);
  contextBridge.exposeInMainWorld(API_GLOBAL, {
    call: api.call,
    on: api.on,
    close: api.close,
  } satisfies ApiClient);
  contextBridge.exposeInMainWorld(DESKTOP_GLOBAL, {
    onMenuCommand: desktop.onMenuCommand,
    pickFolder: desktop.pickFolder,
  } satisfies DesktopBridge);
}
