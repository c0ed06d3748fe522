/**
 * Where the library lives. `--data DIR` overrides everywhere; otherwise $CIRCUIT_DATA_DIR;
 * otherwise the platform's per-user data folder:
 *   Linux    $XDG_DATA_HOME/circuit-workbench (default ~/.local/share/circuit-workbench)
 *   macOS    ~/Library/Application Support/circuit-workbench
 *   Windows  %APPDATA%\circuit-workbench
 *
 * Layout: library.sqlite (+ -wal, -shm), graphs/<uuid>.cwgraph (one sidecar per graph) and
 * jobs/<id>.checkpoint (a resumable job's progress, while the job can still run).
 */
import os from 'node:os';
import path from 'node:path';

export const LIBRARY_FILE = 'library.sqlite';
export const GRAPH_DIR = 'graphs';
export const JOB_DIR = 'jobs';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.CIRCUIT_DATA_DIR) return path.resolve(env.CIRCUIT_DATA_DIR);
  const home = os.homedir();
  if (platform === 'win32')
    return path.join(env.APPDATA || path.join(home, 'AppData', 'Roaming'), 'circuit-workbench');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'circuit-workbench');
  return path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'circuit-workbench');
}

/** `--data DIR` if given, else the default. */
export function resolveDataDir(flag: string | undefined): string {
  return flag ? path.resolve(flag) : defaultDataDir();
}
