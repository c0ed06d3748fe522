/**
 * The main window and the app's confinement, on fake Electron modules: webPreferences,
 * navigation / new-window / webview / redirect denial, session policy (permissions, remote
 * requests, downloads), the app:// scheme and its CSP, single instance, window state, data
 * folder, lifecycle.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesktopApp, PRODUCT_NAME, resolveDesktopDataDir } from '../../electron/app/app.ts';
import { createAppProtocolHandler, resolveAppPath } from '../../electron/app/protocol.ts';
import {
  APP_SCHEME,
  APP_URL,
  CONTENT_SECURITY_POLICY,
  isAllowedRequest,
  safeFileName,
} from '../../electron/app/security.ts';
import { STATE_FILE, sanitizeWindowState } from '../../electron/app/window-state.ts';
import { defaultDataDir } from '../../electron/store/data-dir.ts';
import { tempDir } from '../store/helpers.ts';
import { createFakeElectron, FakeBrowserWindow, FakeFrame, fakeEvent } from './fake-electron.ts';
import { type AppHarness, startApp, writeRendererDir } from './helpers.ts';

describe('the main window', () => {
  let h: AppHarness;
  beforeAll(async () => {
    h = await startApp();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is created with the security settings', () => {
    const o = h.win.options as { webPreferences: Record<string, unknown> };
    expect(o.webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
    });
    expect(o.webPreferences.preload).toBe(h.desktop.preloadPath);
    expect(path.isAbsolute(o.webPreferences.preload as string)).toBe(true);
    expect(o.webPreferences).not.toHaveProperty('enableBlinkFeatures');
    expect(h.fake.app.sandboxEnabled).toBe(true);
    expect(h.win.loaded).toBe(APP_URL);
    expect(h.fake.app.getName()).toBe(PRODUCT_NAME);
  });

  it('registers app:// as a privileged standard, secure scheme and serves the UI with the CSP', async () => {
    expect(h.fake.calls.schemes).toEqual([
      { scheme: APP_SCHEME, privileges: expect.objectContaining({ standard: true, secure: true }) },
    ]);
    const handler = h.fake.calls.protocolHandlers.get(APP_SCHEME)!;
    const page = await handler(new Request('app://renderer/index.html'));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    const js = await handler(new Request('app://renderer/assets/app.js'));
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('ui');
  });

  it('denies navigation away from the app (http(s) links go to the system browser)', () => {
    const wc = h.win.webContents;
    const nav = (url: string) => {
      const e = fakeEvent({ url });
      wc.emit('will-navigate', e, url);
      return e.defaultPrevented;
    };
    h.fake.calls.openExternal.length = 0;
    expect(nav('https://example.com/paper')).toBe(true);
    expect(nav('file:///etc/passwd')).toBe(true);
    expect(nav('javascript:alert(1)')).toBe(true);
    expect(nav('app://other/index.html')).toBe(true);
    expect(nav('app://renderer/other.html')).toBe(true);
    expect(h.fake.calls.openExternal).toEqual(['https://example.com/paper']);
    const redirect = fakeEvent({ url: 'https://evil.example/' });
    wc.emit('will-redirect', redirect, redirect.url);
    expect(redirect.defaultPrevented).toBe(true);
    const webview = fakeEvent();
    wc.emit('will-attach-webview', webview, {}, {});
    expect(webview.defaultPrevented).toBe(true);
  });

  it('denies every new window (external links open in the system browser)', () => {
    const open = h.win.webContents.windowOpenHandler!;
    h.fake.calls.openExternal.length = 0;
    for (const url of [
      'https://example.com/',
      'http://x.test/',
      'mailto:a@b.c',
      'file:///etc',
      'app://renderer/index.html',
      'about:blank',
    ]) {
      expect(open({ url }), url).toEqual({ action: 'deny' });
    }
    expect(h.fake.calls.openExternal).toEqual(['https://example.com/', 'http://x.test/', 'mailto:a@b.c']);
  });

  it('installs the same policy on every webContents the app creates', () => {
    const other = new FakeBrowserWindow({ width: 10, height: 10 });
    expect(other.webContents.windowOpenHandler).not.toBeNull();
    expect(other.webContents.listenerCount('will-navigate')).toBe(1);
    other.close();
  });

  it('refuses every permission and every remote request', () => {
    const s = h.fake.session;
    let granted: boolean | null = null;
    s.permissionRequestHandler!(h.win.webContents, 'media', (g: boolean) => {
      granted = g;
    });
    expect(granted).toBe(false);
    expect(s.permissionCheckHandler!(h.win.webContents, 'clipboard-read', 'app://renderer', {})).toBe(false);
    const cancel = (url: string) => {
      let r: { cancel: boolean } | null = null;
      s.beforeRequest!({ url }, (x) => {
        r = x;
      });
      return r!.cancel;
    };
    for (const url of [
      'https://cdn.example/x.js',
      'http://127.0.0.1:7411/',
      'ws://127.0.0.1:7411/api',
      'file:///etc/passwd',
      'blob:https://x/1',
    ]) {
      expect(cancel(url), url).toBe(true);
    }
    for (const url of [
      'app://renderer/assets/app.js',
      'data:image/png;base64,AA==',
      'blob:app://renderer/123',
    ]) {
      expect(cancel(url), url).toBe(false);
    }
  });

  it('saves exports only from the app, through a save dialog', () => {
    const download = (url: string, name: string) => {
      const item = {
        options: null as null | { defaultPath: string },
        getURL: () => url,
        getFilename: () => name,
        setSaveDialogOptions(o: { defaultPath: string }) {
          item.options = o;
        },
      };
      const e = fakeEvent();
      h.fake.session.emit('will-download', e, item, h.win.webContents);
      return { prevented: e.defaultPrevented, options: item.options };
    };
    const ok = download('blob:app://renderer/5f1', 'graph.png');
    expect(ok.prevented).toBe(false);
    expect(path.basename(ok.options!.defaultPath)).toBe('graph.png');
    expect(download('https://example.com/x.exe', 'x.exe').prevented).toBe(true);
    expect(path.basename(download('blob:app://renderer/2', '../../.bashrc').options!.defaultPath)).toBe(
      'bashrc',
    );
  });

  it('accepts IPC only from the main frame of its own window showing the app', () => {
    const wc = h.win.webContents;
    const ev = (frame: FakeFrame | null, sender = wc) => ({ sender, senderFrame: frame }) as never;
    expect(h.desktop.isTrustedSender(ev(wc.mainFrame))).toBe(true);
    expect(h.desktop.isTrustedSender(ev(new FakeFrame(wc, wc.mainFrame)))).toBe(false);
    expect(h.desktop.isTrustedSender(ev(new FakeFrame(wc, null, 'https://example.com/')))).toBe(false);
    expect(h.desktop.isTrustedSender(ev(null))).toBe(false);
  });

  it('sends menu commands to the window', () => {
    h.desktop.sendMenuCommand({ command: 'view-compare' });
    expect(h.win.webContents.sent.at(-1)).toEqual({
      channel: 'circuit:menu',
      args: [{ command: 'view-compare' }],
    });
  });
});

describe('the app:// scheme', () => {
  const tmp = tempDir('cw-proto-');
  const root = writeRendererDir(path.join(tmp.dir, 'dist'));
  fs.writeFileSync(path.join(tmp.dir, 'secret.txt'), 'secret');
  fs.symlinkSync(path.join(tmp.dir, 'secret.txt'), path.join(root, 'link.txt'));
  const handler = createAppProtocolHandler(root);
  afterAll(() => tmp.cleanup());

  it('serves nothing outside the UI folder', async () => {
    for (const url of [
      'app://renderer/../secret.txt',
      'app://renderer/%2e%2e/secret.txt',
      'app://renderer/assets/..%2f..%2fsecret.txt',
      'app://renderer/..%5csecret.txt',
      'app://renderer/link.txt',
      'app://renderer/missing.js',
      'app://renderer/assets',
      'app://other/index.html',
      'app://renderer/a%00b',
    ]) {
      const r = await handler(new Request(url));
      expect(r.status, url).toBe(404);
      expect(await r.text()).not.toContain('secret');
    }
    expect(resolveAppPath(root, 'app://renderer/')).toBe(path.join(root, 'index.html'));
    expect((await handler(new Request('app://renderer/', { method: 'POST' }))).status).toBe(405);
  });

  it('has a strict CSP: no remote origins, no inline or eval scripts, no plugins or frames', () => {
    const d = Object.fromEntries(
      CONTENT_SECURITY_POLICY.split(';').map((x) => {
        const [k, ...v] = x.trim().split(/\s+/);
        return [k, v];
      }),
    );
    expect(d['default-src']).toEqual(["'none'"]);
    expect(d['script-src']).toEqual(["'self'"]);
    expect(d['connect-src']).toEqual(["'self'"]);
    expect(d['object-src']).toEqual(["'none'"]);
    expect(d['frame-src']).toEqual(["'none'"]);
    expect(d['base-uri']).toEqual(["'none'"]);
    expect(d['frame-ancestors']).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval|https?:|ws:|\*/);
  });

  it('allows requests to its own origin, data: and its own blobs only', () => {
    expect(isAllowedRequest('app://renderer/index.html')).toBe(true);
    expect(isAllowedRequest('app://evil/index.html')).toBe(false);
    expect(isAllowedRequest('https://example.com')).toBe(false);
    expect(safeFileName('a/b\\c:d.png')).toBe('c_d.png');
    expect(safeFileName('...')).toBe('export');
  });
});

describe('start-up and lifecycle', () => {
  it('runs a single instance: a second one quits at once; the first comes to the front', async () => {
    const f = createFakeElectron();
    f.app.singleInstance = false;
    const second = new DesktopApp(f.electron, {
      appRoot: '/nowhere',
      argv: [],
      env: {},
      platform: 'linux',
      resourcesPath: '/nowhere',
      versions: {},
    });
    expect(second.prepare()).toBe(false);
    expect(f.app.quitCalls).toBe(1);
    expect(f.calls.schemes).toEqual([]);

    const h = await startApp();
    try {
      h.win.minimized = true;
      h.fake.app.emit('second-instance', fakeEvent(), ['circuit-workbench'], '/');
      expect(h.win.minimized).toBe(false);
      expect(h.win.focused).toBe(true);
    } finally {
      await h.close();
    }
  });

  it('remembers the window state across runs', async () => {
    const h = await startApp();
    const userData = h.fake.app.userData;
    h.win.bounds = { x: 40, y: 50, width: 1000, height: 700 };
    h.win.maximized = true;
    h.win.close();
    const saved = JSON.parse(fs.readFileSync(path.join(userData, STATE_FILE), 'utf8'));
    expect(saved).toEqual({ x: 40, y: 50, width: 1000, height: 700, maximized: true });
    const win2 = h.desktop.createWindow() as unknown as FakeBrowserWindow;
    expect(win2.options).toMatchObject({ x: 40, y: 50, width: 1000, height: 700 });
    expect(win2.maximized).toBe(true);
    await h.close();
  });

  it('drops a saved position that is off every display, and clamps sizes', () => {
    const screen = [{ x: 0, y: 0, width: 1920, height: 1080 }];
    expect(sanitizeWindowState({ x: 5000, y: 10, width: 900, height: 600 }, screen)).toEqual({
      width: 900,
      height: 600,
      maximized: false,
    });
    expect(sanitizeWindowState({ x: 10, y: 10, width: 10, height: 99999 }, screen)).toEqual({
      x: 10,
      y: 10,
      width: 800,
      height: 1080,
      maximized: false,
    });
    expect(sanitizeWindowState('junk', screen)).toMatchObject({ width: 1440, height: 900 });
  });

  it('keeps the library in the user data folder, overridable with --data or $CIRCUIT_DATA_DIR', () => {
    expect(resolveDesktopDataDir(['--data', '/tmp/lib'], {}, 'linux')).toBe('/tmp/lib');
    expect(resolveDesktopDataDir(['--data=/tmp/lib2'], {}, 'linux')).toBe('/tmp/lib2');
    expect(resolveDesktopDataDir([], { CIRCUIT_DATA_DIR: '/tmp/lib3' }, 'linux')).toBe('/tmp/lib3');
    expect(resolveDesktopDataDir([], { XDG_DATA_HOME: '/xdg' }, 'linux')).toBe('/xdg/circuit-workbench');
    expect(resolveDesktopDataDir([], {}, 'darwin')).toBe(defaultDataDir({}, 'darwin'));
    expect(resolveDesktopDataDir([], {}, 'darwin')).toMatch(
      /Library\/Application Support\/circuit-workbench$/,
    );
    expect(resolveDesktopDataDir([], { APPDATA: 'C:\\Users\\me\\AppData\\Roaming' }, 'win32')).toContain(
      'circuit-workbench',
    );
  });

  it('offers to browse read-only when another process runs the library, or quits', async () => {
    const first = await startApp();
    try {
      const browse = await startApp({
        options: { argv: ['--data', first.dataDir] },
        prepare: (f) => f.script.messageBoxResponses.push(0),
      });
      expect(browse.fake.calls.messageBoxes[0]).toMatchObject({
        message: 'This library is in use by another process',
      });
      expect(browse.win).toBeDefined();
      await browse.close();

      const f = createFakeElectron();
      f.script.messageBoxResponses.push(1);
      const quitter = new DesktopApp(f.electron, {
        appRoot: first.dir,
        argv: ['--data', first.dataDir],
        env: {},
        platform: 'linux',
        resourcesPath: first.dir,
        versions: {},
        rendererDir: path.join(first.dir, 'renderer'),
      });
      quitter.prepare();
      f.app.makeReady();
      await quitter.start();
      expect(f.app.exitCode).toBe(0);
      expect(FakeBrowserWindow.all).toEqual([]);
    } finally {
      await first.close();
    }
  });

  it('says plainly when the UI is not built', async () => {
    const f = createFakeElectron();
    const d = new DesktopApp(f.electron, {
      appRoot: '/nowhere',
      argv: ['--data', '/nowhere/lib'],
      env: {},
      platform: 'linux',
      resourcesPath: '/nowhere',
      versions: {},
    });
    d.prepare();
    f.app.makeReady();
    await d.start();
    expect(f.app.exitCode).toBe(1);
    expect(f.calls.errorBoxes[0]!.content).toMatch(/npm run build:ui/);
  });

  it('closes the backend before quitting (will-quit waits for it)', async () => {
    const h = await startApp();
    h.fake.app.quit();
    await new Promise((r) => setTimeout(r, 50));
    expect(h.fake.app.quitCalls).toBe(2);
    expect(fs.existsSync(path.join(h.dataDir, 'service.lock'))).toBe(false);
    await h.close();
  });
});
