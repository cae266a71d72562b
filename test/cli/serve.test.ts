/**
 * `proxygpt serve` starts the gateway as `npm start` does: from the environment (and .env), on a
 * single process or, with PROXYGPT_WORKERS > 1, as a cluster whose workers re-run the CLI and
 * serve. Both answer /healthz and stop cleanly on SIGTERM.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { freePort } from '../support/server-process.js';
import { join } from 'node:path';
import { PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';
import { spawnCli } from './cli.js';

const ADMIN = 'admin-key-serve-test-0123456789ab';

interface Running {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the whole group: a cluster primary and its workers
      } catch {
        child.kill('SIGKILL');
      }
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function serve(args: string[], env: Record<string, string>, cwd: string): Running {
  const child = spawnCli(['serve', ...args], { cwd, env, detached: true });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** Waits (bounded) until `probe` gives a value; fails early with the server's stderr if it exits. */
async function until<T>(run: Running, what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 25_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (run.child.exitCode !== null) throw new Error(`exited with ${run.child.exitCode} before ${what}: ${run.err()}`);
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}: ${run.err()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function baseEnv(dir: string): Record<string, string> {
  dirs.push(dir);
  return {
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
    PROXYGPT_API_KEY: PROXY_KEY,
    PROXYGPT_ADMIN_KEY: ADMIN,
    PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
}

describe('proxygpt serve', () => {
  it('starts the gateway, answers /healthz and the admin API, and stops on SIGTERM', async () => {
    const dir = tempDir();
    const run = serve([], { ...baseEnv(dir), PORT: '0' }, dir);
    const url = await until(run, 'the server listens', () => /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(run.out())?.[1]);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const keys = await fetch(`${url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(keys.status).toBe(200);
    expect(await keys.json()).toEqual({ object: 'list', data: [] });
    expect(existsSync(join(dir, 'proxygpt.db'))).toBe(true);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.out() + run.err()).not.toContain(UPSTREAM_KEY);
    expect(run.out() + run.err()).not.toContain(ADMIN);
  });

  it('runs a cluster with --workers: every worker re-runs the CLI and serves; flags override the environment', async () => {
    const dir = tempDir();
    const port = await freePort();
    const db = join(dir, 'from-flag.db');
    const run = serve(['--port', String(port), '--workers', '2', '--db', db], { ...baseEnv(dir), PORT: '1', PROXYGPT_WORKERS: '1' }, dir);

    const workers = await until(run, 'two workers listen', () => {
      const ids = new Set([...run.out().matchAll(/"worker":(\d+)[^\n]*"msg":"ProxyGPT listening"|"msg":"ProxyGPT listening"[^\n]*"worker":(\d+)/g)].map((m) => m[1] ?? m[2]));
      return ids.size >= 2 ? ids : undefined;
    });
    expect(workers.size).toBe(2);
    expect(run.out()).toContain(`started 2 workers on 127.0.0.1:${port}`);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(existsSync(db)).toBe(true);
    expect(existsSync(join(dir, 'proxygpt.db'))).toBe(false);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });

  it('exits 2 and names the variable on invalid configuration', async () => {
    const dir = tempDir();
    const { OPENAI_API_KEY: _omitted, ...env } = baseEnv(dir);
    const run = serve([], { ...env, PORT: '0' }, dir);
    expect(await run.exited).toBe(2);
    expect(run.err()).toContain('proxygpt: invalid configuration: OPENAI_API_KEY: is required');
  });
});
