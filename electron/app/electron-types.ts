/**
 * The Electron modules the main-process wiring uses, as one injected value. Only the thin
 * entries (main.ts, preload.ts) import 'electron' at run time; everything else takes these
 * types from Electron's own definitions (`import type`), so tests pass fakes at the module
 * boundary and tsc checks the wiring against the real API.
 */
import type * as ElectronModule from 'electron';

type Electron = typeof ElectronModule;

export type ElectronMain = Pick<
  Electron,
  'app' | 'BrowserWindow' | 'ipcMain' | 'dialog' | 'shell' | 'Menu' | 'session' | 'protocol' | 'screen'
>;

/** What the preload wiring uses. */
export type ElectronPreload = Pick<Electron, 'contextBridge' | 'ipcRenderer'>;

export type {
  App,
  BrowserWindow,
  BrowserWindowConstructorOptions,
  Dialog,
  IpcMain,
  IpcMainInvokeEvent,
  IpcRenderer,
  MenuItemConstructorOptions,
  Rectangle,
  Session,
  WebContents,
  WebPreferences,
} from 'electron';
