/**
 * Progress on stderr: a single rewritten line on a terminal (phase, i/n, ETA), plain lines
 * at phase changes otherwise (logs, CI).
 */
import type { TraceProgress } from '../engine/attribution/defaults.ts';

export function progressPrinter(stream: NodeJS.WriteStream = process.stderr) {
  let lastPhase = '';
  let lastWidth = 0;
  const tty = stream.isTTY === true;
  return {
    update(p: TraceProgress) {
      const eta =
        p.etaSeconds !== undefined && p.done < p.total ? `, ETA ${formatSeconds(p.etaSeconds)}` : '';
      const line = `${p.phase.padEnd(9)} ${p.done}/${p.total}${eta}`;
      if (tty) {
        stream.write(`\r${line.padEnd(lastWidth)}`);
        lastWidth = line.length;
      } else if (p.phase !== lastPhase || p.done === p.total) {
        stream.write(`${line}\n`);
      }
      lastPhase = p.phase;
    },
    done() {
      if (tty && lastWidth) stream.write(`\r${' '.repeat(lastWidth)}\r`);
    },
  };
}

export function formatSeconds(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}
