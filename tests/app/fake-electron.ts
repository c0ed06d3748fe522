/**
 * Electron's main-process modules replaced at the module boundary: the value main.ts would pass
 * to the wiring (`{ app, BrowserWindow, ipcMain, dialog, shell, Menu, session, protocol, screen }`),
 * recording what the wiring does with them. Only the members the wiring uses exist.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type { ElectronMain } from '../../electron/app/electron-types.ts';

/** An Electron-style event: preventDefault recorded, extra fields (url) carried. */
export function fakeEvent<T extends object>(
  extra: T = {} as T,
): T & { defaultPrevented: boolean; preventDefault(): void } {
  const e = {
    ...extra,
    defaultPrevented: false,
    preventDefault() {
      e.defaultPrevented = true;
    },
  };
  return e;
}

let nextContentsId = 1;

export class FakeWebContents extends EventEmitter {
  readonly id = nextContentsId++;
  url = '';
  destroyed = false;
  readonly sent: Array<{ channel: string; args: unknown[] }> = [];
  windowOpenHandler: ((d: { url: string }) => { action: string }) | null = null;
  readonly mainFrame: FakeFrame;

  constructor() {
    super();
    this.mainFrame = new FakeFrame(this, null);
  }
  getURL() {
    return this.url;
  }
  send(channel: string, ...args: unknown[]) {
    this.sent.push({ channel, args });
  }
  isDestroyed() {
    return this.destroyed;
  }
  setWindowOpenHandler(h: (d: { url: string }) => { action: string }) {
    this.windowOpenHandler = h;
  }
}

export class FakeFrame {
  constructor(
    readonly owner: FakeWebContents,
    readonly parent: FakeFrame | null,
    private readonly fixedUrl?: string,
  ) {}
  get url() {
    return this.fixedUrl ?? this.owner.url;
  }
}

export class FakeBrowserWindow extends EventEmitter {
  static all: FakeBrowserWindow[] = [];
  static focused: FakeBrowserWindow | null = null;
  static getAllWindows() {
    return FakeBrowserWindow.all.filter((w) => !w.destroyed);
  }
  static getFocusedWindow() {
    return FakeBrowserWindow.focused;
  }
  static fromWebContents(wc: FakeWebContents) {
    return FakeBrowserWindow.all.find((w) => w.webContents === wc) ?? null;
  }

  readonly webContents = new FakeWebContents();
  destroyed = false;
  maximized = false;
  minimized = false;
  shown = false;
  focused = false;
  bounds: { x: number; y: number; width: number; height: number };
  loaded: string | null = null;

  constructor(readonly options: Record<string, unknown>) {
    super();
    FakeBrowserWindow.all.push(this);
    this.bounds = {
      x: (options.x as number) ?? 100,
      y: (options.y as number) ?? 100,
      width: options.width as number,
      height: options.height as number,
    };
    app.emit('web-contents-created', fakeEvent(), this.webContents);
  }
  async loadURL(url: string) {
    this.loaded = url;
    this.webContents.url = url;
  }
  maximize() {
    this.maximized = true;
  }
  isMaximized() {
    return this.maximized;
  }
  isMinimized() {
    return this.minimized;
  }
  restore() {
    this.minimized = false;
  }
  show() {
    this.shown = true;
  }
  focus() {
    this.focused = true;
  }
  isDestroyed() {
    return this.destroyed;
  }
  getNormalBounds() {
    return { ...this.bounds };
  }
  /** Closes like a user would: 'close', then 'closed'. */
  close() {
    this.emit('close', fakeEvent());
    this.destroyed = true;
    this.webContents.destroyed = true;
    this.emit('closed');
  }
}

class FakeApp extends EventEmitter {
  name = 'circuit-workbench';
  isPackaged = false;
  singleInstance = true;
  sandboxEnabled = false;
  quitCalls = 0;
  exitCode: number | null = null;
  userData = '';
  private readyResolve!: () => void;
  private readonly ready = new Promise<void>((r) => {
    this.readyResolve = r;
  });

  setName(n: string) {
    this.name = n;
  }
  getName() {
    return this.name;
  }
  getVersion() {
    return '0.1.0';
  }
  requestSingleInstanceLock() {
    return this.singleInstance;
  }
  enableSandbox() {
    this.sandboxEnabled = true;
  }
  whenReady() {
    return this.ready;
  }
  makeReady() {
    this.readyResolve();
  }
  getPath(name: string) {
    if (name === 'userData') return this.userData;
    return path.join(os.tmpdir(), `fake-${name}`);
  }
  quit() {
    this.quitCalls++;
    const e = fakeEvent();
    this.emit('will-quit', e);
  }
  exit(code = 0) {
    this.exitCode = code;
  }
}

export let app = new FakeApp();

export class FakeIpcMain {
  readonly handlers = new Map<string, (event: unknown, ...args: unknown[]) => unknown>();
  handle(channel: string, h: (event: unknown, ...args: unknown[]) => unknown) {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, h);
  }
  removeHandler(channel: string) {
    this.handlers.delete(channel);
  }
  /** What ipcRenderer.invoke would get back, sent from `frame`'s page. */
  async invoke(
    channel: string,
    from: { sender: FakeWebContents; senderFrame: FakeFrame | null },
    ...args: unknown[]
  ) {
    const h = this.handlers.get(channel);
    if (!h) throw new Error(`No handler registered for '${channel}'`);
    // Electron structured-clones arguments and results.
    return structuredClone(await h(from, ...structuredClone(args)));
  }
}

export interface DialogScript {
  open: Array<{ canceled: boolean; filePaths: string[] }>;
  messageBoxResponses: number[];
}

export function createFakeElectron() {
  app = new FakeApp();
  FakeBrowserWindow.all = [];
  FakeBrowserWindow.focused = null;
  const ipcMain = new FakeIpcMain();
  const script: DialogScript = { open: [], messageBoxResponses: [] };
  const calls = {
    openDialogs: [] as Array<Record<string, unknown>>,
    messageBoxes: [] as Array<Record<string, unknown>>,
    errorBoxes: [] as Array<{ title: string; content: string }>,
    openExternal: [] as string[],
    openPath: [] as string[],
    menu: null as unknown[] | null,
    schemes: [] as unknown[],
    protocolHandlers: new Map<string, (r: Request) => Promise<Response>>(),
  };
  const sessionEmitter = new EventEmitter();
  const defaultSession = Object.assign(sessionEmitter, {
    permissionRequestHandler: null as null | ((...a: unknown[]) => void),
    permissionCheckHandler: null as null | ((...a: unknown[]) => boolean),
    beforeRequest: null as null | ((d: { url: string }, cb: (r: { cancel: boolean }) => void) => void),
    setPermissionRequestHandler(h: (...a: unknown[]) => void) {
      this.permissionRequestHandler = h;
    },
    setPermissionCheckHandler(h: (...a: unknown[]) => boolean) {
      this.permissionCheckHandler = h;
    },
    webRequest: {
      onBeforeRequest(h: (d: { url: string }, cb: (r: { cancel: boolean }) => void) => void) {
        defaultSession.beforeRequest = h;
      },
    },
  });
  const modalResult = (options: Record<string, unknown>) => {
    calls.openDialogs.push(options);
    return Promise.resolve(script.open.shift() ?? { canceled: true, filePaths: [] });
  };
  const electron = {
    app,
    BrowserWindow: FakeBrowserWindow,
    ipcMain,
    dialog: {
      showOpenDialog: (a: unknown, b?: unknown) => modalResult((b ?? a) as Record<string, unknown>),
      showMessageBox: (a: unknown, b?: unknown) => {
        calls.messageBoxes.push((b ?? a) as Record<string, unknown>);
        return Promise.resolve({ response: script.messageBoxResponses.shift() ?? 0, checkboxChecked: false });
      },
      showErrorBox: (title: string, content: string) => {
        calls.errorBoxes.push({ title, content });
      },
    },
    shell: {
      openExternal: (url: string) => {
        calls.openExternal.push(url);
        return Promise.resolve();
      },
      openPath: (p: string) => {
        calls.openPath.push(p);
        return Promise.resolve('');
      },
    },
    Menu: {
      buildFromTemplate: (t: unknown[]) => t,
      setApplicationMenu: (m: unknown[]) => {
        calls.menu = m;
      },
    },
    session: { defaultSession },
    protocol: {
      registerSchemesAsPrivileged: (s: unknown[]) => {
        calls.schemes.push(...s);
      },
      handle: (scheme: string, h: (r: Request) => Promise<Response>) => {
        calls.protocolHandlers.set(scheme, h);
      },
    },
    screen: {
      getAllDisplays: () => [{ workArea: { x: 0, y: 0, width: 1920, height: 1080 } }],
    },
  };
  return {
    electron: electron as unknown as ElectronMain,
    app,
    ipcMain,
    script,
    calls,
    session: defaultSession,
  };
}

export type FakeElectron = ReturnType<typeof createFakeElectron>;

/** The IPC event of a call from `win`'s page (its main frame). */
export function fromWindow(win: FakeBrowserWindow) {
  return { sender: win.webContents, senderFrame: win.webContents.mainFrame };
}
