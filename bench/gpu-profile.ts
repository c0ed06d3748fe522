/**
 * Sums up the ONNX Runtime profiles that `CIRCUIT_ORT_PROFILE=DIR` makes (one JSON per
 * session, written when it is released): where a GPU provider's run time goes.
 *
 * - `runs`: the sessions' `model_run` events (count, wall time): what the caller waited.
 * - `gpu`: on WebGPU, each dispatch's GPU time (timestamp queries; events named
 *   `node&op&program`), summed by op and program: the device busy time, and which kernels
 *   fill it. Far below the runs' wall time means the device waits on the host (dispatch
 *   overhead, copies, read-backs), not on arithmetic.
 *   By op and shapes too (`byShape`: the shapes as the kernel sees them, a vec4 kernel's last
 *   dimension in fours): which products of which sizes take the time, and at what rate.
 * - `host`: every node's kernel time on the host (`*_kernel_time`), by provider and op: for a
 *   GPU node that is its dispatch cost; nodes left to the CPU provider show up as such.
 *
 * `npx tsx bench/gpu-profile.ts DIR [--top 25]` prints the summary of a profile folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isMainScript } from './shared.ts';

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; provider?: string; shapes?: string };
}

export interface ProfileTotal {
  name: string;
  count: number;
  ms: number;
}

export interface GpuProfileSummary {
  files: number;
  runs: { count: number; ms: number };
  gpu: {
    dispatches: number;
    ms: number;
    byOp: ProfileTotal[];
    byProgram: ProfileTotal[];
    byShape: ProfileTotal[];
  };
  host: { nodes: number; ms: number; byProviderOp: ProfileTotal[] };
}

function add(map: Map<string, ProfileTotal>, name: string, us: number): void {
  const t = map.get(name) ?? { name, count: 0, ms: 0 };
  t.count++;
  t.ms += us / 1000;
  map.set(name, t);
}

const sorted = (map: Map<string, ProfileTotal>, top: number) =>
  [...map.values()].sort((a, b) => b.ms - a.ms).slice(0, top);

export function summarizeGpuProfiles(dir: string, top = 25): GpuProfileSummary {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  const runs = { count: 0, ms: 0 };
  const gpuOps = new Map<string, ProfileTotal>();
  const gpuPrograms = new Map<string, ProfileTotal>();
  const gpuShapes = new Map<string, ProfileTotal>();
  const hostOps = new Map<string, ProfileTotal>();
  let dispatches = 0;
  let gpuMs = 0;
  let hostNodes = 0;
  let hostMs = 0;
  for (const file of files) {
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
    for (const e of events) {
      if (e.cat === 'Session' && e.name === 'model_run') {
        runs.count++;
        runs.ms += e.dur / 1000;
      } else if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) {
        hostNodes++;
        hostMs += e.dur / 1000;
        add(hostOps, `${e.args?.provider ?? '?'} ${e.args?.op_name ?? '?'}`, e.dur);
      } else if (e.cat === 'Api' && e.name.includes('&')) {
        // node&op&program (WebGpuContext's dispatch timestamps)
        const [, op = '?', program = '?'] = e.name.split('&');
        dispatches++;
        gpuMs += e.dur / 1000;
        add(gpuOps, op, e.dur);
        add(gpuPrograms, `${op}/${program}`, e.dur);
        add(gpuShapes, `${op} ${(e.args?.shapes ?? '').trim()}`, e.dur);
      }
    }
  }
  return {
    files: files.length,
    runs,
    gpu: {
      dispatches,
      ms: gpuMs,
      byOp: sorted(gpuOps, top),
      byProgram: sorted(gpuPrograms, top),
      byShape: sorted(gpuShapes, top),
    },
    host: { nodes: hostNodes, ms: hostMs, byProviderOp: sorted(hostOps, top) },
  };
}

export function formatGpuProfile(s: GpuProfileSummary): string {
  const rows = (xs: ProfileTotal[]) =>
    xs
      .map((x) => `  ${x.ms.toFixed(1).padStart(9)} ms ${String(x.count).padStart(7)}×  ${x.name}`)
      .join('\n');
  return [
    `${s.files} profiles; ${s.runs.count} runs, ${s.runs.ms.toFixed(0)} ms wall`,
    `GPU: ${s.gpu.dispatches} dispatches, ${s.gpu.ms.toFixed(0)} ms busy (${((100 * s.gpu.ms) / Math.max(1, s.runs.ms)).toFixed(0)}% of the runs' wall)`,
    'GPU time by op:',
    rows(s.gpu.byOp),
    'GPU time by program:',
    rows(s.gpu.byProgram),
    'GPU time by op and shapes (a vec4 kernel counts its last dimension in fours):',
    rows(s.gpu.byShape),
    `host kernel time: ${s.host.nodes} nodes, ${s.host.ms.toFixed(0)} ms, by provider and op:`,
    rows(s.host.byProviderOp),
  ].join('\n');
}

if (isMainScript(import.meta.url, 'gpu-profile.ts')) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: npx tsx bench/gpu-profile.ts DIR [--top N]\n');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  process.stdout.write(
    `${formatGpuProfile(summarizeGpuProfiles(dir, i > 0 ? Number(process.argv[i + 1]) : 25))}\n`,
  );
}
