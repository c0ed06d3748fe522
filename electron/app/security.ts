/**
 * The renderer's confinement, following Electron's security checklist: a sandboxed,
 * context-isolated renderer without Node; only the app's own scheme is loaded (no remote
 * content: every other request is cancelled); a strict Content-Security-Policy on every
 * response; navigation, redirects, new windows and <webview> denied (http(s) and mailto links
 * go to the system browser); every permission request refused; downloads (the UI's exports)
 * only from the app's own blob:/data: URLs, saved where the user picks in a save dialog.
 */
import path from 'node:path';
import type { Session, Shell, WebContents, WebPreferences } from 'electron';

/** The privileged scheme the UI is served from (registered before `ready`). */
export const APP_SCHEME = 'app';
export const APP_HOST = 'renderer';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_URL = `${APP_ORIGIN}/index.html`;

export const APP_SCHEME_PRIVILEGES = {
  standard: true,
  secure: true,
  supportFetchAPI: true,
  codeCache: true,
} as const;

/**
 * The desktop CSP (sent as a response header; the page's own meta CSP also applies, and the
 * stricter of the two wins). No network at all: the API goes through the preload bridge.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "media-src 'none'",
  "object-src 'none'",
  "frame-src 'none'",
  "child-src 'none'",
  "manifest-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** webPreferences of every app window. */
export function secureWebPreferences(preload: string, opts: { devTools: boolean }): WebPreferences {
  return {
    preload,
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
    safeDialogs: true,
    spellcheck: false,
    devTools: opts.devTools,
  };
}

/** Whether `url` is the app's own page (any path/hash of app://renderer). */
export function isAppUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === `${APP_SCHEME}:` && u.host === APP_HOST;
  } catch {
    return false;
  }
}

/** The same document: only the hash differs (the UI's routes are hash routes). */
export function isSameDocument(current: string, target: string): boolean {
  try {
    const a = new URL(current);
    const b = new URL(target);
    a.hash = '';
    b.hash = '';
    return isAppUrl(target) && a.href === b.href;
  } catch {
    return false;
  }
}

/** URLs that may be handed to the system browser / mail client. */
export function isExternalUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return (
      (u.protocol === 'https:' || u.protocol === 'http:' || u.protocol === 'mailto:') && url.length <= 4096
    );
  } catch {
    return false;
  }
}

/**
 * Requests the renderer may make: its own scheme, blob:/data: (exports, inline icons) and
 * devtools. Everything else (http, https, ws, file, …) is cancelled: no remote content.
 */
export function isAllowedRequest(url: string): boolean {
  if (isAppUrl(url)) return true;
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  if (scheme === 'data:') return true;
  if (scheme === 'blob:') return isAppUrl(url.slice(5));
  return scheme === 'devtools:' || scheme === 'chrome-devtools:';
}

function openExternally(shell: Pick<Shell, 'openExternal'>, url: string): void {
  if (isExternalUrl(url)) void shell.openExternal(url).catch(() => {});
}

/**
 * Navigation and window policy for one webContents (installed on every webContents the app
 * creates, through app's 'web-contents-created').
 */
export function secureWebContents(contents: WebContents, shell: Pick<Shell, 'openExternal'>): void {
  contents.on('will-navigate', (event) => {
    if (isSameDocument(contents.getURL(), event.url)) return;
    event.preventDefault();
    openExternally(shell, event.url);
  });
  contents.on('will-redirect', (event) => {
    if (isAppUrl(event.url)) return;
    event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    openExternally(shell, url);
    return { action: 'deny' };
  });
}

/** A file name for the save dialog: no folders, no control characters. */
export function safeFileName(name: string): string {
  const base = path.basename(name.replace(/\\/g, '/')).replace(/[\u0000-\u001f<>:"|?*]/g, '_');
  const trimmed = base.replace(/^\.+/, '').slice(0, 200);
  return trimmed || 'export';
}

/** Permission, request and download policy of the app's session. */
export function hardenSession(ses: Session, opts: { downloadsDir: () => string }): void {
  ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.webRequest.onBeforeRequest((details, callback) => callback({ cancel: !isAllowedRequest(details.url) }));
  ses.on('will-download', (event, item) => {
    if (!isAllowedRequest(item.getURL()) || isAppUrl(item.getURL())) {
      event.preventDefault();
      return;
    }
    // No save path set: Electron asks with this save dialog, opened by the main process.
    item.setSaveDialogOptions({
      title: 'Save export',
      defaultPath: path.join(opts.downloadsDir(), safeFileName(item.getFilename())),
    });
  });
}
