/**
 * Runs the `proxygpt` CLI for tests, two ways:
 * - `runCli` / `runJson`: in this process, through the same `run(argv, io)` that the executable
 *   (src/cli/main.ts) calls, with exactly the given environment and stdout/stderr captured, so a
 *   command costs milliseconds instead of a process start. Paths given to it must be absolute:
 *   the working directory is the test runner's.
 * - `spawnCli` / `runCliProcess`: the real executable as a child process (node + tsx's loader, as
 *   `npm run dev` does), with exactly the given environment (plus PATH) in a working directory of
 *   the test's choosing, so no .env or PROXYGPT_* variable of the developer's leaks in. For what
 *   only the entry point does: reading .env, exit codes, stdout/stderr of a process, `serve`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { run } from '../../src/cli/program.js';

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliResult {
  /** The exit code (null only for a process killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The whole environment the CLI sees (nothing of the test runner's is added). */
  env?: Record<string, string>;
}

export interface ProcessOptions extends CliOptions {
  cwd?: string;
  /** Own process group (a server and its cluster workers can be stopped together). */
  detached?: boolean;
}

/** Runs one command in this process; `serve` is refused (it starts a server for good: use spawnCli). */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const result = await run(['node', 'proxygpt', ...args], {
    env: { ...options.env },
    out: (text) => (stdout += text),
    err: (text) => (stderr += text),
  });
  if (result === 'serving') throw new Error(`proxygpt ${args.join(' ')} started a server inside the test process; use spawnCli`);
  return { code: result, stdout, stderr };
}

/** Runs the CLI (in this process) and parses its stdout as JSON, failing with the CLI's stderr when it did not succeed. */
export async function runJson<T = Record<string, unknown>>(args: string[], options: CliOptions = {}): Promise<T> {
  const result = await runCli([...args, '--json'], options);
  if (result.code !== 0) throw new Error(`proxygpt ${args.join(' ')} exited with ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export function spawnCli(args: string[], options: ProcessOptions = {}): ChildProcess {
  return spawn(process.execPath, ['--import', TSX_LOADER, CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
}

/** Runs the real executable as a child process and collects its exit code, stdout and stderr. */
export function runCliProcess(args: string[], options: ProcessOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}
