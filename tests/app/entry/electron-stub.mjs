// The 'electron' module for the entry test: the members main.ts hands to the wiring, just enough
// to start. When the window loads, it calls two IPC handlers as the page would, prints one JSON
// line with what it saw, and quits (which the app delays until its backend has closed).
import { EventEmitter } from 'node:events';
import path from 'node:path';

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const handlers = new Map();
const fakeEvent = () => ({
  defaultPrevented: false,
  preventDefault() {
    this.defaultPrevented = true;
  },
});

class App extends EventEmitter {
  isPackaged = false;
  name = 'electron';
  setName(n) {
    this.name = n;
  }
  getName() {
    return this.name;
  }
  getVersion() {
    return '0.0.0';
  }
  requestSingleInstanceLock() {
    return true;
  }
  enableSandbox() {}
  whenReady() {
    return Promise.resolve();
  }
  getPath(name) {
    return path.join(process.env.STUB_USER_DATA, name);
  }
  quit() {
    const e = fakeEvent();
    this.emit('will-quit', e);
    if (!e.defaultPrevented) {
      out({ event: 'quit' });
      process.exit(0);
    }
  }
  exit(code) {
    out({ event: 'exit', code });
    process.exit(code);
  }
}

export const app = new App();

export const ipcMain = {
  handle(channel, h) {
    handlers.set(channel, h);
  },
  removeHandler(channel) {
    handlers.delete(channel);
  },
};

let nextId = 1;

export class BrowserWindow extends EventEmitter {
  static all = [];
  static getAllWindows() {
    return BrowserWindow.all;
  }
  static getFocusedWindow() {
    return null;
  }
  static fromWebContents() {
    return BrowserWindow.all[0] ?? null;
  }
  constructor(options) {
    super();
    this.options = options;
    const wc = Object.assign(new EventEmitter(), {
      id: nextId++,
      url: '',
      getURL: () => wc.url,
      send() {},
      isDestroyed: () => false,
      setWindowOpenHandler() {},
    });
    wc.mainFrame = {
      parent: null,
      get url() {
        return wc.url;
      },
    };
    this.webContents = wc;
    BrowserWindow.all.push(this);
    app.emit('web-contents-created', fakeEvent(), wc);
  }
  async loadURL(url) {
    this.webContents.url = url;
    setTimeout(() => void report(this), 0);
  }
  maximize() {}
  show() {}
  isDestroyed() {
    return false;
  }
  isMaximized() {
    return false;
  }
  getNormalBounds() {
    return { x: 0, y: 0, width: 1440, height: 900 };
  }
}

async function report(win) {
  const ev = { sender: win.webContents, senderFrame: win.webContents.mainFrame };
  const info = await handlers.get('circuit:api:server.info')(ev, {});
  const bad = await handlers.get('circuit:api:projects.create')(ev, { name: 7 });
  out({
    event: 'loaded',
    url: win.webContents.url,
    appName: app.name,
    channels: [...handlers.keys()].length,
    webPreferences: win.options.webPreferences,
    info,
    bad,
  });
  app.quit();
}

export const dialog = {
  showErrorBox(title, content) {
    out({ event: 'errorBox', title, content });
  },
  showMessageBox: async () => ({ response: 1 }),
  showOpenDialog: async () => ({ canceled: true, filePaths: [] }),
};
export const shell = { openExternal: async () => {}, openPath: async () => '' };
export const Menu = { buildFromTemplate: (t) => t, setApplicationMenu() {} };
export const protocol = { registerSchemesAsPrivileged() {}, handle() {} };
export const screen = { getAllDisplays: () => [{ workArea: { x: 0, y: 0, width: 1920, height: 1080 } }] };
export const session = {
  defaultSession: Object.assign(new EventEmitter(), {
    setPermissionRequestHandler() {},
    setPermissionCheckHandler() {},
    webRequest: { onBeforeRequest() {} },
  }),
};
