/**
 * The real server as a child process, for tests of what only a whole process shows (cluster
 * workers, start-up, shutdown): a free port, `node --import tsx src/main.ts` in its own process
 * group, its output captured, a bounded wait until /healthz answers, and a stop that ends the
 * primary and its workers together.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => done(port));
    });
  });
}

export interface ServerProcess {
  base: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** SIGTERM to the whole process group (SIGKILL after 8 s); resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `src/main.ts` with exactly `env` (plus PATH, HOME, PORT and HOST) and waits for /healthz. */
export async function startServerProcess(env: Record<string, string>, readyWithinMs = 20_000): Promise<ServerProcess> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    detached: true, // own process group: the primary and its workers are stopped together
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, PORT: String(port), HOST: '127.0.0.1', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

  const deadline = Date.now() + readyWithinMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not become healthy: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    base,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.pid === undefined || child.exitCode !== null) return child.exitCode;
      process.kill(-child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 8_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
