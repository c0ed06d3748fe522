/**
 * The application menu: File (new project, open/import graph JSON, register model, export
 * image / graph JSON, data folder), Edit (the standard roles text fields need), View (compare,
 * subgraph, zoom, full screen; reload and developer tools only in development), Window (macOS),
 * Help. Built as a plain template from injected actions, so the tests read it without Electron.
 */
import type { MenuItemConstructorOptions } from 'electron';

export interface MenuActions {
  newProject(): void;
  openGraphJson(): void;
  registerModel(): void;
  exportImage(): void;
  exportGraphJson(): void;
  openDataFolder(): void;
  compare(): void;
  subgraph(): void;
  about(): void;
  serverMode(): void;
}

export interface MenuOptions {
  platform: NodeJS.Platform;
  /** Development build: reload and developer tools in View. */
  dev: boolean;
  appName: string;
}

export function buildMenuTemplate(a: MenuActions, o: MenuOptions): MenuItemConstructorOptions[] {
  const mac = o.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [];
  if (mac) {
    template.push({
      label: o.appName,
      submenu: [
        { label: `About ${o.appName}`, click: () => a.about() },
        { type: 'separator' },
        { role: 'services' },
        { type: 'separator' },
        { role: 'hide' },
        { role: 'hideOthers' },
        { role: 'unhide' },
        { type: 'separator' },
        { role: 'quit' },
      ],
    });
  }
  template.push({
    label: '&File',
    submenu: [
      {
        id: 'new-project',
        label: 'New Project…',
        accelerator: 'CmdOrCtrl+Shift+N',
        click: () => a.newProject(),
      },
      { type: 'separator' },
      {
        id: 'open-graph',
        label: 'Open Graph JSON…',
        accelerator: 'CmdOrCtrl+O',
        click: () => a.openGraphJson(),
      },
      { id: 'register-model', label: 'Register Model…', click: () => a.registerModel() },
      { type: 'separator' },
      {
        id: 'export-image',
        label: 'Export Image…',
        accelerator: 'CmdOrCtrl+Shift+E',
        click: () => a.exportImage(),
      },
      { id: 'export-graph-json', label: 'Export Graph JSON…', click: () => a.exportGraphJson() },
      { type: 'separator' },
      { id: 'open-data-folder', label: 'Open Data Folder', click: () => a.openDataFolder() },
      ...(mac ? [] : [{ type: 'separator' } as const, { role: 'quit' } as const]),
    ],
  });
  template.push({
    label: '&Edit',
    submenu: [
      { role: 'undo' },
      { role: 'redo' },
      { type: 'separator' },
      { role: 'cut' },
      { role: 'copy' },
      { role: 'paste' },
      { role: 'selectAll' },
    ],
  });
  template.push({
    label: '&View',
    submenu: [
      { id: 'view-compare', label: 'Compare', accelerator: 'CmdOrCtrl+Shift+C', click: () => a.compare() },
      { id: 'view-subgraph', label: 'Subgraph', accelerator: 'CmdOrCtrl+Shift+G', click: () => a.subgraph() },
      { type: 'separator' },
      { role: 'resetZoom' },
      { role: 'zoomIn' },
      { role: 'zoomOut' },
      { type: 'separator' },
      { role: 'togglefullscreen' },
      ...(o.dev
        ? [{ type: 'separator' } as const, { role: 'reload' } as const, { role: 'toggleDevTools' } as const]
        : []),
    ],
  });
  if (mac) template.push({ role: 'windowMenu' });
  template.push({
    role: 'help',
    label: '&Help',
    submenu: [
      { id: 'server-mode', label: 'Use in a Browser (Server Mode)…', click: () => a.serverMode() },
      { id: 'help-data-folder', label: 'Open Data Folder', click: () => a.openDataFolder() },
      ...(mac
        ? []
        : [{ type: 'separator' } as const, { label: `About ${o.appName}`, click: () => a.about() }]),
    ],
  });
  return template;
}
