/**
 * Child processes for the benchmark: free ports, readiness probes, RSS, and a registry that kills
 * every child when the bench ends, fails, is interrupted (Ctrl-C, SIGTERM, SIGHUP) or runs out of
 * time. Children write their output to log files (no CPU spent piping it through the bench); the
 * tail of a log is shown when a child fails.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface Child {
  name: string;
  proc: ChildProcess;
  logPath: string;
  exited: Promise<number | null>;
}

const live = new Set<Child>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Starts a child whose stdout and stderr go to `logPath`; it is killed when the bench exits. */
export function startChild(
  name: string,
  command: string,
  args: string[],
  logPath: string,
  options: Pick<SpawnOptions, 'env' | 'cwd'> & { ipc?: boolean } = {},
): Child {
  const fd = openSync(logPath, 'a');
  const { ipc, ...rest } = options;
  const proc = spawn(command, args, { ...rest, stdio: ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const child: Child = { name, proc, logPath, exited };
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

export function logTail(child: Child, lines = 30): string {
  if (!existsSync(child.logPath)) return '';
  return readFileSync(child.logPath, 'utf8').split('\n').slice(-lines).join('\n');
}

/** Waits until `probe` resolves true (the child is ready), failing early if the child exits. */
export async function waitReady(child: Child, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void child.exited.then(() => (gone = true));
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${child.name} exited during start:\n${logTail(child)}`);
    try {
      if (await probe()) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${child.name} did not become ready within ${timeoutMs} ms:\n${logTail(child)}`);
}

/** Probe: an HTTP GET answering below 500. */
export const httpProbe = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).status < 500;

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c)));
}

/** Last-resort synchronous kill (process 'exit' handler: no awaiting there). */
function killAllNow(): void {
  for (const child of live) {
    try {
      child.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Makes sure no child outlives the bench: on exit, on signals, on uncaught errors, and after
 * `deadlineMs` (the run is bounded). `onAbort` runs first (e.g. to print what was measured).
 */
export function guardChildren(deadlineMs: number, onAbort: (reason: string) => void): void {
  process.once('exit', killAllNow);
  let aborting = false;
  const abort = (reason: string, code: number) => {
    if (aborting) return;
    aborting = true;
    try {
      onAbort(reason);
    } finally {
      void stopAll().finally(() => process.exit(code));
      setTimeout(() => {
        killAllNow();
        process.exit(code);
      }, 4000).unref();
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => abort(`interrupted (${signal})`, 130));
  process.on('uncaughtException', (err) => abort(`uncaught error: ${err.stack ?? String(err)}`, 1));
  process.on('unhandledRejection', (err) => abort(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, 1));
  setTimeout(() => abort(`time limit of ${Math.round(deadlineMs / 1000)} s reached`, 1), deadlineMs).unref();
}

/** Resident set size of a process in MB, from /proc/<pid>/status (VmRSS); null when unreadable. */
export function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** An idle process's RSS: as it is now, and once it has stopped falling. */
export interface SettledRss {
  /** Right when asked (the load just ended, or ended while other parts ran). */
  firstMb: number | null;
  /** The lowest reading once no reading fell for `quietMs` (or at `maxMs`). */
  settledMb: number | null;
  /** How long that took. */
  afterMs: number;
}

/**
 * Reads the RSS of an idle process once a second until it has not fallen for `quietMs` (at most
 * `maxMs`). V8 gives a heap grown under load back only after some seconds without calls (its
 * memory reducer: a full GC and a smaller heap, in up to three steps 8–12 s apart), so one reading right
 * after a load says when it was taken more than what an idle gateway holds.
 */
export async function settledRss(pid: number | undefined, quietMs = 20_000, maxMs = 90_000): Promise<SettledRss> {
  const firstMb = rssMb(pid);
  const started = Date.now();
  let lowest = firstMb;
  let lowestAt = started;
  while (lowest !== null && Date.now() - lowestAt < quietMs && Date.now() - started < maxMs) {
    await sleep(1000);
    const now = rssMb(pid);
    if (now === null) break;
    if (now < lowest - 0.5) {
      lowest = now;
      lowestAt = Date.now();
    }
  }
  return { firstMb, settledMb: lowest, afterMs: lowestAt - started };
}

/** Children of a process (cluster workers), from /proc/<pid>/task/<pid>/children. */
export function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The soft limit on open files for this process (children inherit it). */
export function openFilesLimit(): number | null {
  try {
    const match = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!match) return null;
    return match[1] === 'unlimited' ? Infinity : Number(match[1]);
  } catch {
    return null;
  }
}
