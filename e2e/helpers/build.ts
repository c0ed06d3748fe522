/** Builds renderer/dist when it is missing or older than the UI's sources (so the tests never run a stale UI). */
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'vite';
import { ROOT } from './server.ts';

function newest(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of fs.readdirSync(p))
    if (e !== 'dist' && e !== 'node_modules') m = Math.max(m, newest(path.join(p, e)));
  return m;
}

/** The electron/ modules the UI bundles (renderer/src/api imports them at run time): a change there needs a rebuild too. */
const BUNDLED_FROM_ELECTRON = [
  'electron/api/api-error.ts',
  'electron/api/packed-edges.ts',
  'electron/api/transports/websocket-client.ts',
  'electron/engine/attribution/defaults.ts',
];

export async function ensureUiBuilt(): Promise<void> {
  const index = path.join(ROOT, 'renderer/dist/index.html');
  const sources = Math.max(
    newest(path.join(ROOT, 'renderer/src')),
    newest(path.join(ROOT, 'renderer/index.html')),
    newest(path.join(ROOT, 'vite.config.ts')),
    ...BUNDLED_FROM_ELECTRON.filter((f) => fs.existsSync(path.join(ROOT, f))).map((f) =>
      newest(path.join(ROOT, f)),
    ),
  );
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= sources) return;
  await build({ configFile: path.join(ROOT, 'vite.config.ts'), logLevel: 'warn' });
}
