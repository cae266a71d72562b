/**
 * Open-file limits for thousands of open streams. Each open stream holds one descriptor in the
 * load generator and the mock and two in the proxy. Node raises its own soft limit to the hard
 * limit when it starts, but has no setrlimit to go beyond: when the limit is below what the run
 * needs, the bench starts itself again once under `bash -c 'ulimit -n N; exec …'` (which raises the
 * hard limit too where the user may, e.g. root with CAP_SYS_RESOURCE); every process it starts
 * (mock, gateway, pass-through, nginx, Portkey) inherits the limit. Where it cannot be raised, the
 * run goes on and the many-streams phase opens what fits (the report says so).
 */
import { spawn } from 'node:child_process';
import { openFilesLimit } from './procs.js';

const MARK = 'BENCH_FD_RAISED';

/**
 * Returns null when this process may go on (the limit is enough, or was already raised once);
 * otherwise runs the bench again with the raised limit and returns its exit code.
 */
export async function relaunchWithOpenFiles(wanted: number): Promise<number | null> {
  const limit = openFilesLimit();
  if (limit === null || limit >= wanted || process.env[MARK] === '1') return null;
  const script = `ulimit -n ${wanted} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"`;
  const child = spawn('bash', ['-c', script, 'bench', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: '1' },
  });
  // Ctrl-C reaches both processes (same process group); the child handles it and ends cleanly.
  process.on('SIGINT', () => {});
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    // No bash: go on with the limit there is (the run notes what it cannot open).
    child.once('error', () => resolve(null));
  });
}
