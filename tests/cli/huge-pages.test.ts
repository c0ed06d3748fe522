/**
 * bin/huge-pages.mjs: on Linux with glibc ≥ 2.35 the command runs again as a child with
 * transparent huge pages for large allocations; the child gets the tunable (and the caller's
 * other tunables), signals are forwarded, exit codes pass through, and a child whose wrapper is
 * killed outright stops itself.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';

const PROBE = path.join(import.meta.dirname, '../fixtures/huge-pages-probe.mjs');
const glibc = process.report.getReport() as { header: { glibcVersionRuntime?: string } };
const [major, minor] = (glibc.header.glibcVersionRuntime ?? '0.0').split('.').map(Number);
const applies = process.platform === 'linux' && (major > 2 || (major === 2 && minor >= 35));

interface Seen {
  pid: number;
  ppid: number;
  tunables: string | null;
}

function run(arg: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [PROBE, arg], {
    encoding: 'utf8',
    env: { ...process.env, GLIBC_TUNABLES: '', CIRCUIT_WRAPPER_PID: '', CIRCUIT_HUGE_PAGES: '', ...env },
  });
  return { code: r.status, seen: JSON.parse(r.stdout) as Seen, wrapper: r.pid };
}

function firstLine(child: ChildProcess): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the probe printed nothing')), 20_000);
    readline.createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(JSON.parse(l));
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.runIf(applies)('huge pages (bin/huge-pages.mjs)', () => {
  it('runs the command in a child with the tunable, keeping the caller’s, and passes its exit code', () => {
    const r = run('7', { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
    expect(r.code).toBe(7);
    expect(r.seen.ppid).toBe(r.wrapper);
    expect(r.seen.tunables).toBe('glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
  });

  it('runs in place when turned off or already set', () => {
    const off = run('0', { CIRCUIT_HUGE_PAGES: '0' });
    expect(off.seen.pid).toBe(off.wrapper);
    expect(off.seen.tunables).toBe('');
    const set = run('0', { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' });
    expect(set.seen.pid).toBe(set.wrapper);
  });

  it('forwards SIGTERM to the child and exits as it does', async () => {
    const wrapper = spawn(process.execPath, [PROBE, 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const seen = await firstLine(wrapper);
    expect(seen.ppid).toBe(wrapper.pid);
    const exited = new Promise<number | string | null>((resolve) =>
      wrapper.once('exit', (code, signal) => resolve(code ?? signal)),
    );
    wrapper.kill('SIGTERM');
    expect(await exited).toBe(3);
    expect(alive(seen.pid)).toBe(false);
  });

  it('a child whose wrapper is killed outright stops itself', async () => {
    const wrapper = spawn(process.execPath, [PROBE, 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const seen = await firstLine(wrapper);
    wrapper.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (alive(seen.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(seen.pid)).toBe(false);
  });
});
