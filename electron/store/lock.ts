/**
 * One queue runner per library: the process that runs the persisted job queue (the app, or
 * `circuit serve`) holds `<data>/service.lock` ({pid, host, startedAt, procStart}). A second one is
 * refused with a message naming the holder; a lock left by a process that died is taken over, and
 * so is one whose PID now belongs to another process (on Linux `procStart`, field 22 of
 * /proc/PID/stat, the start time in clock ticks since boot, tells them apart; elsewhere only the
 * PID is checked). Readers
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
  /** Field 22 of /proc/PID/stat when it could be read (Linux); absent elsewhere. */
  procStart?: string;
}

/**
 * The start time of process `pid` (field 22 of /proc/PID/stat: clock ticks after boot), or null
 * where there is no /proc or the process is gone. The command name (field 2) may hold spaces and
 * parentheses, so the fields are counted after its last ')'.
 */
export function processStartTime(pid: number): string | null {
  if (process.platform !== 'linux') return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = rest[19]; // fields 3.. follow the ')', so field 22 is the 20th of them
    return start && /^\d+$/.test(start) ? start : null;
  } catch {
    return null;
  }
}

/** True when the lock's PID now names a different process than the one that wrote it. */
function pidReused(held: LockInfo): boolean {
  if (held.procStart === undefined) return false;
  const now = processStartTime(held.pid);
  return now !== null && now !== held.procStart;
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
  const procStart = processStartTime(process.pid);
  const mine: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    startedAt: Date.now(),
    ...(procStart !== null ? { procStart } : {}),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(mine), { flag: 'wx' });
      return {
        release() {
          try {
            const held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
            if (held.pid === mine.pid && held.host === mine.host && held.procStart === mine.procStart)
              fs.rmSync(file, { force: true });
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
    const stale =
      held === null ||
      (held.host === mine.host &&
        (held.pid === mine.pid ? pidReused(held) : !alive(held.pid) || pidReused(held)));
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
