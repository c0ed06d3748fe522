/**
 * Vite build of the renderer (Vue 3 + Pinia + sigma). `npm run build:ui` writes renderer/dist,
 * which `circuit serve` serves; `npm run dev:ui` runs Vite's dev server against a running
 * `circuit serve` (start it with `--allow-origin http://localhost:5173` and open
 * http://localhost:5173/?api=ws://127.0.0.1:7411/api).
 */
import path from 'node:path';
import vue from '@vitejs/plugin-vue';
import { defineConfig, type Plugin } from 'vite';

/**
 * The dev server's page talks to a `circuit serve` on another port (?api=ws://127.0.0.1:…),
 * which the page's connect-src 'self' refuses: widen it to loopback WebSockets, in dev only.
 */
const devApiCsp: Plugin = {
  name: 'dev-api-csp',
  apply: 'serve',
  transformIndexHtml: (html) =>
    html.replace("connect-src 'self';", "connect-src 'self' ws://127.0.0.1:* ws://localhost:* ws://[::1]:*;"),
};

export default defineConfig({
  root: path.resolve(import.meta.dirname, 'renderer'),
  base: './',
  plugins: [vue(), devApiCsp],
  build: {
    outDir: path.resolve(import.meta.dirname, 'renderer/dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: { port: 5173, strictPort: true },
});
