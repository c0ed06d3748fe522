// Linux/glibc: run the command again with transparent huge pages for large allocations.
//
// Every large array the engine makes (decoded weights, source blocks, rows, the adjacency) is
// fresh memory from mmap, and each 4 KiB page of it faults on first write. Where faults are
// dear (virtual machines) that costs more than the work: decoding gemma-2-2b-sized bf16 weights
// into fresh float32 arrays ran at 0.16 GB/s on one thread here, 0.59 GB/s with huge pages
// (bench/decode.ts). glibc reads `glibc.malloc.hugetlb` only when the process starts, so the
// command runs itself once more with it set, forwards signals, and exits as the child does.
// `CIRCUIT_HUGE_PAGES=0` turns this off; other platforms and libcs run as they are.
import { spawn } from 'node:child_process';

const TUNABLE = 'glibc.malloc.hugetlb';
/** Set in the child: the wrapper's pid, which the child watches (see watchWrapper). */
const WRAPPER_ENV = 'CIRCUIT_WRAPPER_PID';

function wanted() {
  if (process.platform !== 'linux' || process.env.CIRCUIT_HUGE_PAGES === '0') return false;
  if ((process.env.GLIBC_TUNABLES ?? '').includes(TUNABLE)) return false;
  // glibc ≥ 2.35 knows the tunable (musl has no tunables).
  const version = process.report?.getReport().header.glibcVersionRuntime;
  if (!version) return false;
  const [major, minor] = version.split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 35);
}

/**
 * In the wrapper: starts the child and returns true (the caller does nothing else). In the
 * child, or where huge pages do not apply: returns false, and the caller runs the command.
 */
export function runWithHugePages() {
  if (process.env[WRAPPER_ENV]) {
    watchWrapper(Number(process.env[WRAPPER_ENV]));
    return false;
  }
  if (!wanted()) return false;
  const tunables = [process.env.GLIBC_TUNABLES, `${TUNABLE}=1`].filter(Boolean).join(':');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: tunables, [WRAPPER_ENV]: String(process.pid) },
  });
  // A terminal's Ctrl-C reaches the child itself (same process group): forwarding it too would
  // deliver it twice, and a second SIGINT stops a command that is cleaning up after the first.
  const fromTerminal = process.stdin.isTTY;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (!(signal === 'SIGINT' && fromTerminal)) child.kill(signal);
    });
  }
  child.on('error', (e) => {
    console.error(`circuit: could not start ${process.execPath}: ${e.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
  return true;
}

/** The wrapper killed outright (SIGKILL) cannot forward anything: the child then stops itself. */
function watchWrapper(pid) {
  const timer = setInterval(() => {
    if (process.ppid !== pid) {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1000);
  timer.unref();
}
