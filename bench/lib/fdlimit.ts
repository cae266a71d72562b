/**
 * Open-file limits for thousands of open streams. Node cannot raise its own limit (no setrlimit),
 * so when the soft limit is below what the run needs, the bench starts itself again under
 * `bash -c 'ulimit -n N; exec …'` (N: what is wanted, or the hard limit when that is lower); every
 * process it starts (mock, gateway, pass-through, nginx, Portkey) inherits the raised limit. Each
 * open stream holds one descriptor in the load generator and the mock and two in the proxy.
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
