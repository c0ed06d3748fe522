/**
 * Electron main-process entry. Thin: the only main-process file that imports 'electron'; it
 * passes Electron's modules to the wiring in app.ts. Bundled by build.ts into out/app/main.mjs,
 * the app's main (plain JavaScript: the built app runs no TypeScript loader).
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
