/**
 * The Electron main process, wired from injected Electron modules (main.ts passes the real
 * ones; the tests pass fakes). It owns the window, the menu, the app:// scheme, the IPC
 * handlers and the backend (store + worker threads + service, in process).
 *
 *   before ready   app name, single-instance lock, sandbox for every renderer, the privileged
 *                  app:// scheme, security policy for every webContents, lifecycle handlers
 *   after ready    session policy, app:// handler, backend, IPC, menu, window
 *   quit           the backend closes first (a running trace goes back to the queue)
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ApiClient } from '../api/contract.ts';
import { defaultDataDir } from '../store/data-dir.ts';
import {
  type Backend,
  demoModelDir,
  LibraryInUseError,
  type OpenBackendOptions,
  openBackend,
  registerDemoModel,
} from './backend.ts';
import { type FolderPurpose, MENU_CHANNEL, type MenuCommand } from './channels.ts';
import type { BrowserWindow, ElectronMain, IpcMainInvokeEvent } from './electron-types.ts';
import { forwardApiEvents, PathGrants, registerApiIpc, registerDesktopIpc } from './ipc.ts';
import { buildMenuTemplate, type MenuActions } from './menu.ts';
import { createAppProtocolHandler } from './protocol.ts';
import {
  APP_SCHEME,
  APP_SCHEME_PRIVILEGES,
  APP_URL,
  hardenSession,
  isAppUrl,
  secureWebContents,
  secureWebPreferences,
} from './security.ts';
import {
  captureWindowState,
  loadWindowState,
  MIN_HEIGHT,
  MIN_WIDTH,
  saveWindowState,
} from './window-state.ts';

export const PRODUCT_NAME = 'Circuit Workbench';
/** Graph JSON files larger than this are refused before reading (the API's own bound). */
export const MAX_GRAPH_JSON_BYTES = 2 ** 29 - 24;
/** How long quitting waits for the backend to stop. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

export interface DesktopAppOptions {
  /** The folder holding package.json, out/app, electron/, renderer/dist (the repository or app.asar). */
  appRoot: string;
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** process.resourcesPath (the demo model lives there when packaged). */
  resourcesPath: string;
  versions: Partial<Record<string, string>>;
  preloadPath?: string;
  rendererDir?: string;
  /** For tests: how the backend is opened. */
  openBackend?: (o: OpenBackendOptions) => Backend;
  log?: (line: string) => void;
}

/** The value of `--name VALUE` or `--name=VALUE` in `argv`. */
export function flagValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith(`${name}=`) && a.length > name.length + 1) return a.slice(name.length + 1);
    if (a === name && argv[i + 1] && !argv[i + 1]!.startsWith('--')) return argv[i + 1];
  }
  return undefined;
}

/**
 * The library folder: `--data DIR` (or `--data=DIR`) on the command line, else
 * $CIRCUIT_DATA_DIR, else the platform's per-user data folder — the same library the `circuit`
 * CLI and `circuit serve` use (see electron/store/data-dir.ts).
 */
export function resolveDesktopDataDir(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
): string {
  const flag = flagValue(argv, '--data');
  return flag ? path.resolve(flag) : defaultDataDir(env, platform);
}

function errorText(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(message)) {
    return (
      `${message}\n\nA native module is built for Node.js, not for Electron. Rebuild it for Electron with ` +
      '`npx electron-builder install-app-deps` (and `npm rebuild better-sqlite3` before using the CLI or the tests again).'
    );
  }
  return message;
}

export class DesktopApp {
  private readonly log: (line: string) => void;
  private readonly grants = new PathGrants();
  /** webContents ids of the app's own windows. */
  private readonly windowContents = new Set<number>();
  private readonly cleanups: Array<() => void> = [];
  private backend: Backend | null = null;
  private mainWindow: BrowserWindow | null = null;
  private shuttingDown: Promise<void> | null = null;
  private shutDown = false;
  readonly dataDir: string;
  readonly preloadPath: string;
  readonly rendererDir: string;

  constructor(
    private readonly electron: ElectronMain,
    private readonly opts: DesktopAppOptions,
  ) {
    this.log = opts.log ?? ((line) => console.error(line));
    this.dataDir = resolveDesktopDataDir(opts.argv, opts.env, opts.platform);
    this.preloadPath = opts.preloadPath ?? path.join(opts.appRoot, 'out', 'app', 'preload.cjs');
    // `--ui DIR` (another build of the UI) only when running from the repository.
    const ui = electron.app.isPackaged ? undefined : flagValue(opts.argv, '--ui');
    this.rendererDir =
      opts.rendererDir ?? (ui ? path.resolve(ui) : path.join(opts.appRoot, 'renderer', 'dist'));
  }

  get client(): ApiClient | null {
    return this.backend?.client ?? null;
  }

  get window(): BrowserWindow | null {
    return this.mainWindow;
  }

  /**
   * Before `ready` (synchronous). Returns false when another instance already runs: it has been
   * told to show itself, and this one quits.
   */
  prepare(): boolean {
    const { app, protocol, shell } = this.electron;
    app.setName(PRODUCT_NAME);
    if (!app.requestSingleInstanceLock()) {
      app.quit();
      return false;
    }
    app.enableSandbox();
    protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { ...APP_SCHEME_PRIVILEGES } }]);
    app.on('web-contents-created', (_event, contents) => secureWebContents(contents, shell));
    app.on('second-instance', () => this.focus());
    app.on('window-all-closed', () => {
      if (this.opts.platform !== 'darwin') app.quit();
    });
    app.on('activate', () => {
      if (this.backend && this.electron.BrowserWindow.getAllWindows().length === 0) this.createWindow();
    });
    app.on('will-quit', (event) => {
      if (this.shutDown) return;
      event.preventDefault();
      void this.shutdown().finally(() => app.quit());
    });
    return true;
  }

  /** After `ready`: policy, scheme handler, backend, IPC, menu, and the window. */
  async start(): Promise<void> {
    const { app, session, protocol, dialog, ipcMain, BrowserWindow } = this.electron;
    await app.whenReady();
    hardenSession(session.defaultSession, { downloadsDir: () => app.getPath('downloads') });
    if (!fs.existsSync(path.join(this.rendererDir, 'index.html'))) {
      dialog.showErrorBox(
        PRODUCT_NAME,
        `The user interface is not built (${this.rendererDir} is missing). Run \`npm run build:ui\`, or \`npm start\`, which builds it.`,
      );
      app.exit(1);
      return;
    }
    protocol.handle(APP_SCHEME, createAppProtocolHandler(this.rendererDir));

    const backend = await this.openBackendInteractively();
    if (!backend) return;
    this.backend = backend;
    try {
      const demo = demoModelDir({
        packaged: app.isPackaged,
        resourcesPath: this.opts.resourcesPath,
        appRoot: this.opts.appRoot,
      });
      if (!backend.readOnly) await registerDemoModel(backend.client, demo);
    } catch (e) {
      this.log(`the demo model could not be registered: ${errorText(e)}`);
    }

    const isTrustedSender = (event: IpcMainInvokeEvent) => this.isTrustedSender(event);
    this.cleanups.push(
      registerApiIpc(ipcMain, { client: backend.client, grants: this.grants, isTrustedSender }),
    );
    this.cleanups.push(
      registerDesktopIpc(ipcMain, {
        grants: this.grants,
        isTrustedSender,
        showFolderDialog: (event, purpose) =>
          this.pickFolder(BrowserWindow.fromWebContents(event.sender) ?? this.mainWindow, purpose),
      }),
    );
    this.cleanups.push(
      forwardApiEvents(backend.client, () =>
        BrowserWindow.getAllWindows()
          .filter((w) => !w.isDestroyed() && this.windowContents.has(w.webContents.id))
          .map((w) => w.webContents),
      ),
    );
    this.installMenu();
    this.createWindow();
  }

  private async openBackendInteractively(): Promise<Backend | null> {
    const { app, dialog } = this.electron;
    const open = this.opts.openBackend ?? openBackend;
    let failure: unknown;
    try {
      return open({ dataDir: this.dataDir, runJobs: true, log: this.log });
    } catch (e) {
      failure = e;
    }
    if (failure instanceof LibraryInUseError) {
      const r = await dialog.showMessageBox({
        type: 'warning',
        title: PRODUCT_NAME,
        message: 'This library is in use by another process',
        detail:
          `${failure.message}\n\nYou can browse it here without running traces, or quit and close the ` +
          'other process first (or start this app with --data DIR for another library).',
        buttons: ['Browse Without Running Traces', 'Quit'],
        defaultId: 0,
        cancelId: 1,
      });
      if (r.response !== 0) {
        app.exit(0);
        return null;
      }
      try {
        return open({ dataDir: this.dataDir, runJobs: false, log: this.log });
      } catch (e) {
        failure = e;
      }
    }
    dialog.showErrorBox(
      `${PRODUCT_NAME}: cannot open the library`,
      `${this.dataDir}\n\n${errorText(failure)}`,
    );
    app.exit(1);
    return null;
  }

  /** IPC is accepted only from the main frame of one of the app's own windows, showing app://renderer. */
  isTrustedSender(event: IpcMainInvokeEvent): boolean {
    const frame = event.senderFrame;
    return (
      frame !== null &&
      frame.parent === null &&
      isAppUrl(frame.url) &&
      this.windowContents.has(event.sender.id)
    );
  }

  createWindow(): BrowserWindow {
    const { BrowserWindow, app, screen } = this.electron;
    const stateDir = app.getPath('userData');
    const state = loadWindowState(
      stateDir,
      screen.getAllDisplays().map((d) => d.workArea),
    );
    const win = new BrowserWindow({
      ...(state.x !== undefined && state.y !== undefined ? { x: state.x, y: state.y } : {}),
      width: state.width,
      height: state.height,
      minWidth: MIN_WIDTH,
      minHeight: MIN_HEIGHT,
      show: false,
      title: PRODUCT_NAME,
      backgroundColor: '#ffffff',
      webPreferences: secureWebPreferences(this.preloadPath, { devTools: !app.isPackaged }),
    });
    const id = win.webContents.id;
    this.windowContents.add(id);
    if (state.maximized) win.maximize();
    win.once('ready-to-show', () => win.show());
    win.on('close', () => saveWindowState(stateDir, captureWindowState(win)));
    win.on('closed', () => {
      this.windowContents.delete(id);
      this.grants.forget(id);
      if (this.mainWindow === win) this.mainWindow = null;
    });
    this.mainWindow = win;
    win.loadURL(APP_URL).catch((e: unknown) => this.log(`cannot load the UI: ${errorText(e)}`));
    return win;
  }

  private focus(): void {
    const win = this.mainWindow;
    if (!win || win.isDestroyed()) return;
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  }

  private targetWindow(): BrowserWindow | null {
    const focused = this.electron.BrowserWindow.getFocusedWindow();
    if (focused && this.windowContents.has(focused.webContents.id)) return focused;
    return this.mainWindow && !this.mainWindow.isDestroyed() ? this.mainWindow : null;
  }

  /** Tells the UI to do something a menu item asked for. */
  sendMenuCommand(command: MenuCommand): void {
    const win = this.targetWindow();
    if (win) win.webContents.send(MENU_CHANNEL, command);
  }

  private async pickFolder(
    win: BrowserWindow | null,
    purpose: FolderPurpose,
    defaultPath?: string,
  ): Promise<string | null> {
    const { dialog } = this.electron;
    const options = {
      title: purpose === 'checkpoint' ? 'Choose the model checkpoint folder' : 'Choose the transcoder folder',
      message:
        purpose === 'checkpoint'
          ? 'The folder with config.json and *.safetensors'
          : 'The folder with the transcoders (config.yaml and their weights)',
      buttonLabel: 'Choose',
      properties: ['openDirectory' as const, 'dontAddToRecent' as const],
      ...(defaultPath ? { defaultPath } : {}),
    };
    const r = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
    return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0]!;
  }

  private async showError(title: string, e: unknown): Promise<void> {
    const win = this.targetWindow();
    const options = { type: 'error' as const, title: PRODUCT_NAME, message: title, detail: errorText(e) };
    if (win) await this.electron.dialog.showMessageBox(win, options);
    else await this.electron.dialog.showMessageBox(options);
  }

  private async showInfo(message: string, detail: string): Promise<void> {
    const win = this.targetWindow();
    const options = { type: 'info' as const, title: PRODUCT_NAME, message, detail };
    if (win) await this.electron.dialog.showMessageBox(win, options);
    else await this.electron.dialog.showMessageBox(options);
  }

  /** File › Open Graph JSON…: the main process's own file dialog, then graphs.importJson. */
  async openGraphJson(): Promise<void> {
    const client = this.backend?.client;
    if (!client) return;
    const win = this.targetWindow();
    const options = {
      title: 'Open graph JSON',
      properties: ['openFile' as const],
      filters: [
        { name: 'Graph JSON', extensions: ['json'] },
        { name: 'All files', extensions: ['*'] },
      ],
    };
    const r = win
      ? await this.electron.dialog.showOpenDialog(win, options)
      : await this.electron.dialog.showOpenDialog(options);
    if (r.canceled || r.filePaths.length === 0) return;
    const file = r.filePaths[0]!;
    try {
      const size = (await fs.promises.stat(file)).size;
      if (size > MAX_GRAPH_JSON_BYTES) {
        throw new Error(
          `${path.basename(file)} is ${Math.round(size / 2 ** 20)} MiB: larger than a graph JSON may be`,
        );
      }
      const json = await fs.promises.readFile(file, 'utf8');
      const { trace, notes } = await client.call('graphs.importJson', { json });
      this.sendMenuCommand({ command: 'show-trace', traceId: trace.id });
      if (notes.length > 0) await this.showInfo(`Imported ${path.basename(file)}`, notes.join('\n'));
    } catch (e) {
      await this.showError(`Cannot import ${path.basename(file)}`, e);
    }
  }

  /** File › Register Model…: two folder dialogs, then models.register. */
  async registerModel(): Promise<void> {
    const client = this.backend?.client;
    if (!client) return;
    const win = this.targetWindow();
    const checkpointDir = await this.pickFolder(win, 'checkpoint');
    if (!checkpointDir) return;
    const transcoderDir = await this.pickFolder(win, 'transcoders', checkpointDir);
    if (!transcoderDir) return;
    try {
      const m = await client.call('models.register', { checkpointDir, transcoderDir });
      this.sendMenuCommand({ command: 'show-model', modelId: m.id });
      if (!m.valid) {
        await this.showInfo(
          `${m.name} was registered, but it cannot be traced yet`,
          m.validation.problems.map((p) => `• ${p.message}`).join('\n'),
        );
      }
    } catch (e) {
      await this.showError('Cannot register the model', e);
    }
  }

  menuActions(): MenuActions {
    const { shell } = this.electron;
    const run = (f: () => Promise<void>) => () => {
      f().catch((e: unknown) => this.log(`menu action failed: ${errorText(e)}`));
    };
    return {
      newProject: () => this.sendMenuCommand({ command: 'new-project' }),
      openGraphJson: run(() => this.openGraphJson()),
      registerModel: run(() => this.registerModel()),
      exportImage: () => this.sendMenuCommand({ command: 'export-image' }),
      exportGraphJson: () => this.sendMenuCommand({ command: 'export-graph-json' }),
      openDataFolder: run(async () => {
        const err = await shell.openPath(this.dataDir);
        if (err) throw new Error(err);
      }),
      compare: () => this.sendMenuCommand({ command: 'view-compare' }),
      subgraph: () => this.sendMenuCommand({ command: 'view-subgraph' }),
      about: run(() => {
        const v = this.opts.versions;
        return this.showInfo(
          `${PRODUCT_NAME} ${this.electron.app.getVersion()}`,
          `Electron ${v.electron ?? '?'} · Chromium ${v.chrome ?? '?'} · Node.js ${v.node ?? '?'}\n` +
            `Library: ${this.dataDir}${this.backend?.readOnly ? ' (browsing only: another process runs its traces)' : ''}`,
        );
      }),
      serverMode: run(() =>
        this.showInfo(
          'Server mode',
          'The same workbench runs in a browser: `circuit serve --data "' +
            this.dataDir +
            '"` serves it at http://127.0.0.1:7411/ (loopback only unless --host and a token are given). ' +
            'Only one process runs a library’s traces at a time: quit this app first, or serve another library.',
        ),
      ),
    };
  }

  private installMenu(): void {
    const { Menu, app } = this.electron;
    const template = buildMenuTemplate(this.menuActions(), {
      platform: this.opts.platform,
      dev: !app.isPackaged,
      appName: PRODUCT_NAME,
    });
    Menu.setApplicationMenu(Menu.buildFromTemplate(template));
  }

  /** Stops IPC and the backend (bounded by a timeout). Idempotent. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      for (const c of this.cleanups.splice(0)) c();
      const backend = this.backend;
      this.backend = null;
      if (backend) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          backend.close().catch((e: unknown) => this.log(`closing the library failed: ${errorText(e)}`)),
          new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              this.log('the backend did not stop in time; quitting anyway');
              resolve();
            }, SHUTDOWN_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      this.shutDown = true;
    })();
    return this.shuttingDown;
  }
}

/** Entry helper for main.ts: prepare synchronously, start without blocking module evaluation. */
export function runDesktopApp(electron: ElectronMain, opts: DesktopAppOptions): DesktopApp {
  const desktop = new DesktopApp(electron, opts);
  if (desktop.prepare()) {
    desktop.start().catch((e: unknown) => {
      electron.dialog.showErrorBox(`${PRODUCT_NAME} could not start`, errorText(e));
      electron.app.exit(1);
    });
  }
  return desktop;
}
