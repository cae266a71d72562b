/**
 * CPU time and memory of a serving process tree, from /proc: utime + stime of every process in
 * the tree (a gateway, the cluster primary with its workers, nginx's master with its worker), in
 * clock ticks (`getconf CLK_TCK`, usually 100 a second, so 10 ms resolution: a load phase must
 * last long enough to burn hundreds of ticks). CPU time per call varies far less with machine
 * noise than requests/s, and it is what a team pays for.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { rssMb } from './procs.js';

let ticksPerSecond: number | null = null;

/** `getconf CLK_TCK` (100 when getconf is missing). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Direct children of `pid`, over all its threads (a child is listed under the thread that forked it). */
function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const task of tasks) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  const seen: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    if (seen.includes(next)) continue;
    seen.push(next);
    queue.push(...children(next));
  }
  return seen;
}

/** utime + stime of one process in ticks; null when it is gone. */
function processTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/**
 * CPU ticks used so far by the tree under `pid`, per process (keyed by pid, so a process that
 * ends between two readings is not subtracted from the total); null when `pid` is unreadable.
 */
export function treeTicks(pid: number | undefined): Map<number, number> | null {
  if (pid === undefined || processTicks(pid) === null) return null;
  const out = new Map<number, number>();
  for (const p of processTree(pid)) {
    const ticks = processTicks(p);
    if (ticks !== null) out.set(p, ticks);
  }
  return out;
}

/** Ticks used between two readings of `treeTicks` (processes new in `after` count from zero). */
export function ticksBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ticks] of after) total += ticks - (before.get(pid) ?? 0);
  return total;
}

/** Sum of VmRSS over the tree under `pid`, in MB; null when `pid` is unreadable. */
export function treeRssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  const own = rssMb(pid);
  if (own === null) return null;
  return processTree(pid)
    .slice(1)
    .reduce((sum, p) => sum + (rssMb(p) ?? 0), own);
}
