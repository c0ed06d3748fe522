/**
 * Preload entry (sandboxed renderer, isolated world). Thin: it hands Electron's contextBridge
 * and ipcRenderer to the bridge, which exposes `window.circuitApi` and `window.circuitDesktop`.
 * Built to out/app/preload.cjs (a sandboxed preload must be one CommonJS file).
 */
import { contextBridge, ipcRenderer } from 'electron';
import { exposeBridges } from './preload-bridge.ts';

exposeBridges(contextBridge, ipcRenderer);
