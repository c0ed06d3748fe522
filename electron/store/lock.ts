/**
 * One queue runner per library: the process that runs the persisted job queue (the app, or
 * `circuit serve`) holds `<data>/service.lock` ({pid, host, startedAt}). A second one is refused
 * with a message naming the holder; a lock left by a process that died is taken over. Readers
 * and `circuit trace --save` need no lock (SQLite's WAL serializes their writes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StoreError } from './errors.ts';

export const LOCK_FILE = 'service.lock';

interface LockInfo {
  pid: number;
  host: string;
  startedAt: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ServiceLock {
  release(): void;
}

export function acquireServiceLock(dataDir: string): ServiceLock {
  const file = path.join(dataDir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), startedAt: Date.now() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx' });
      return {
        release() {
          try {
            const held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
            if (held.pid === mine.pid && held.host === mine.host) fs.rmSync(file, { force: true });
          } catch {}
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError('io', `cannot create ${file}: ${(e as Error).message}`, file);
      }
    }
    let held: LockInfo | null = null;
    try {
      held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    } catch {}
    const stale = held === null || (held.host === mine.host && held.pid !== mine.pid && !alive(held.pid));
    if (!stale) {
      const who = held!.pid === mine.pid ? 'this process' : `process ${held!.pid} on ${held!.host}`;
      throw new StoreError(
        'conflict',
        `the library in ${dataDir} is already served by ${who} (since ${new Date(held!.startedAt).toISOString()}); stop it first, or remove ${file} if that process is gone`,
        file,
      );
    }
    fs.rmSync(file, { force: true });
  }
  throw new StoreError('conflict', `cannot take the lock ${file}`, file);
}
