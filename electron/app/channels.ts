/**
 * What crosses the Electron IPC boundary, shared by the main process and the preload: channel
 * names, the runtime lists of the contract's methods and events, the reply envelope, and the
 * small desktop-shell surface (menu commands, the folder picker). Types and constants only — no
 * Node, no 'electron' — so the sandboxed preload bundle stays a few kilobytes, and the renderer
 * may `import type` from here (MenuCommand, DesktopBridge).
 *
 * Design: one `ipcMain.handle` channel per API method (`circuit:api:<method>`), each reply an
 * envelope, never a thrown error (Electron flattens those to a prefixed message); one
 * main → renderer channel for the contract's events; one for menu commands; one invoke
 * channel for the folder picker.
 */
import { type ApiErrorData, EVENT_NAMES, type EventName, type MethodName } from '../api/contract.ts';

/** Every method of the contract (the `satisfies` and the type check below keep it complete). */
export const API_METHODS = [
  'server.info',
  'projects.list',
  'projects.create',
  'projects.update',
  'projects.delete',
  'models.list',
  'models.get',
  'models.register',
  'models.validate',
  'models.rename',
  'models.delete',
  'models.transcoderSets',
  'models.tokens',
  'traces.start',
  'traces.get',
  'traces.list',
  'traces.cancel',
  'traces.retrace',
  'traces.delete',
  'traces.restore',
  'traces.duplicate',
  'traces.update',
  'traces.tag',
  'traces.tags',
  'graphs.view',
  'graphs.prune',
  'graphs.views',
  'graphs.exportJson',
  'graphs.importJson',
  'graphs.diff',
  'graphs.nodeIds',
  'features.get',
  'features.setLabel',
  'features.search',
  'features.putDashboards',
  'features.computeDashboards',
  'features.dashboardsStatus',
  'features.cancelDashboards',
  'interventions.start',
  'interventions.list',
  'interventions.get',
  'interventions.cancel',
  'interventions.delete',
  'annotations.get',
  'annotations.update',
] as const satisfies readonly MethodName[];

/** Every event of the contract (contract.ts checks the list is complete). */
export const API_EVENTS: readonly EventName[] = EVENT_NAMES;

// Compile-time completeness: adding a method to the contract without listing it here
// is a type error (the lists are also compared with schema.ts's METHOD_NAMES in the tests).
type Missing<All, Listed> = Exclude<All, Listed>;
const _methodsComplete: [Missing<MethodName, (typeof API_METHODS)[number]>] extends [never] ? true : never =
  true;
void _methodsComplete;

const METHOD_SET: ReadonlySet<string> = new Set(API_METHODS);
const EVENT_SET: ReadonlySet<string> = new Set(API_EVENTS);

export function isApiMethod(name: unknown): name is MethodName {
  return typeof name === 'string' && METHOD_SET.has(name);
}

export function isApiEvent(name: unknown): name is EventName {
  return typeof name === 'string' && EVENT_SET.has(name);
}

const METHOD_PREFIX = 'circuit:api:';

/** The invoke channel of one method. */
export function methodChannel(method: MethodName): string {
  return `${METHOD_PREFIX}${method}`;
}

/** main → renderer: `(event: EventName, data)`. */
export const EVENT_CHANNEL = 'circuit:event';
/** main → renderer: `(command: MenuCommand)`. */
export const MENU_CHANNEL = 'circuit:menu';
/** renderer → main (invoke): `(purpose: FolderPurpose)` → IpcReply of `string | null`. */
export const PICK_FOLDER_CHANNEL = 'circuit:desktop:pickFolder';

/** What a folder dialog is for (its title and the folder it expects). */
export const FOLDER_PURPOSES = ['checkpoint', 'transcoders'] as const;
export type FolderPurpose = (typeof FOLDER_PURPOSES)[number];

/** Every reply of a method channel. */
export type IpcReply = { ok: true; result: unknown } | { ok: false; error: ApiErrorData };

/** The global names the preload defines on `window`. */
export const API_GLOBAL = 'circuitApi';
export const DESKTOP_GLOBAL = 'circuitDesktop';

// ---- the desktop-shell surface (renderer side: `window.circuitDesktop`)

/**
 * Menu items whose action lives in the UI. The main process handles the rest itself (its own
 * dialogs, then the API), and tells the UI what to show afterwards.
 */
export type MenuCommand =
  | { command: 'new-project' }
  | { command: 'export-image' }
  | { command: 'export-graph-json' }
  | { command: 'view-compare' }
  | { command: 'view-subgraph' }
  /** A graph imported by File › Open graph JSON…: open it. */
  | { command: 'show-trace'; traceId: number }
  /** A model registered by File › Register model…: show it (valid or with its problems). */
  | { command: 'show-model'; modelId: number };

export type MenuCommandName = MenuCommand['command'];

export const MENU_COMMANDS = [
  'new-project',
  'export-image',
  'export-graph-json',
  'view-compare',
  'view-subgraph',
  'show-trace',
  'show-model',
] as const satisfies readonly MenuCommandName[];
const _menuComplete: [Missing<MenuCommandName, (typeof MENU_COMMANDS)[number]>] extends [never]
  ? true
  : never = true;
void _menuComplete;

/** Whether `v` is a well-formed MenuCommand (the preload drops anything else). */
export function isMenuCommand(v: unknown): v is MenuCommand {
  if (typeof v !== 'object' || v === null) return false;
  const c = (v as { command?: unknown }).command;
  if (typeof c !== 'string' || !(MENU_COMMANDS as readonly string[]).includes(c)) return false;
  const keys = Object.keys(v);
  if (c === 'show-trace' || c === 'show-model') {
    const k = c === 'show-trace' ? 'traceId' : 'modelId';
    const id = (v as Record<string, unknown>)[k];
    return keys.length === 2 && Number.isSafeInteger(id) && (id as number) > 0;
  }
  return keys.length === 1;
}

/** `window.circuitDesktop`: present only in the desktop app. */
export interface DesktopBridge {
  /** Subscribes to menu commands; returns the unsubscribe function. */
  onMenuCommand(listener: (command: MenuCommand) => void): () => void;
  /**
   * Opens the main process's folder dialog; resolves to the chosen folder (null when
   * cancelled). Only folders obtained this way are accepted by models.register over IPC.
   */
  pickFolder(purpose: FolderPurpose): Promise<string | null>;
}
