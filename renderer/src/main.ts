/**
 * Entry point: picks the API transport (the Electron preload bridge when present, else a
 * WebSocket to the server that served this page), injects it, and mounts the app.
 */
import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import type { DesktopBridge } from './api/desktop.ts';
import { provideApi } from './api/inject.ts';
import { createWebSocketApi, defaultApiUrl, managedFromBridge } from './api/transport.ts';
import type { ApiClient } from './api/types.ts';
import { prewarmShaders } from './graph/canvas.ts';
import './styles.css';

declare global {
  interface Window {
    /** Set by the Electron preload script: the same contract over IPC. */
    circuitApi?: ApiClient;
    /** Set by the Electron preload script: menu commands and folder dialogs. */
    circuitDesktop?: DesktopBridge;
  }
}

provideApi(
  window.circuitApi
    ? managedFromBridge(window.circuitApi)
    : createWebSocketApi(defaultApiUrl(window.location)),
);
createApp(App).use(createPinia()).mount('#app');
// The graph canvas's shaders, compiled while the user picks a trace (not before its first frame).
requestIdleCallback(
  () => {
    try {
      prewarmShaders();
    } catch (err) {
      // No WebGL here: the graph view says so when it opens.
      console.warn('graph shaders not prewarmed:', err);
    }
  },
  { timeout: 2000 },
);
