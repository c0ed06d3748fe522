/**
 * Electron main-process entry. Thin: the only main-process file that imports 'electron'; it
 * passes Electron's modules to the wiring in app.ts. Loaded (through tsx, like the CLI and
 * the job workers) by out/app/main.mjs, which build.ts compiles from bootstrap.ts.
 */
import path from 'node:path';
import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, screen, session, shell } from 'electron';
import { runDesktopApp } from './app.ts';

runDesktopApp(
  { app, BrowserWindow, dialog, ipcMain, Menu, protocol, screen, session, shell },
  {
    appRoot: path.resolve(import.meta.dirname, '..', '..'),
    argv: process.argv.slice(1),
    env: process.env,
    platform: process.platform,
    resourcesPath: process.resourcesPath,
    versions: process.versions,
  },
);
