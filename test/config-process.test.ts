/**
 * Configuration in a running gateway and in the real entry point: a setting takes effect in a
 * started gateway; src/main.ts (spawned as a child process) stops with a non-zero exit code and the
 * variable's name on stderr, and reads a `.env` file in its working directory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KEY, UPSTREAM } from './config-helpers.js';
import { startGateway } from './helpers.js';

describe('settings take effect in a running gateway', () => {
  it('a CORS origin written with a trailing slash still matches the browser Origin', async () => {
    const gw = await startGateway({ env: { PROXYGPT_CORS_ORIGINS: 'https://App.Example.com/' } });
    try {
      const preflight = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
      const other = await fetch(`${gw.url}/healthz`, { headers: { origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await gw.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The real entry point, as a child process.

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const mainTs = join(root, 'src', 'main.ts');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const running: ChildProcess[] = [];
const dirs: string[] = [];

/** Starts src/main.ts in `cwd` with exactly `env` (plus PATH), not the test's environment. */
function runMain(cwd: string, env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', tsxLoader, mainTs], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

function emptyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-config-'));
  dirs.push(dir);
  return dir;
}

/** Resolves with whatever `promise` gives, or rejects after `ms` with `what`. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('src/main.ts', () => {
  it('exits non-zero and names the variable when the configuration is invalid', async () => {
    const run = runMain(emptyDir(), { OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: KEY, USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '-3' });
    const code = await within(20_000, 'the process exits', run.exited);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(run.stderr()).toContain('PROXYGPT_HOURLY_RATE_LIMIT');
    expect(run.stderr()).not.toContain(UPSTREAM);
  });

  it('exits non-zero and names OPENAI_API_KEY when it is missing (no .env to read)', async () => {
    const run = runMain(emptyDir(), { PROXYGPT_API_KEY: KEY });
    const code = await within(20_000, 'the process exits', run.exited);
    expect(code).not.toBe(0);
    expect(run.stderr()).toContain('OPENAI_API_KEY');
  });

  it('refuses Postgres without Redis (exit 2, naming PROXYGPT_REDIS_URL) and never prints the password', async () => {
    const run = runMain(emptyDir(), { OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: KEY, PROXYGPT_DATABASE_URL: 'postgres://gateway:pg-secret-5e6f@127.0.0.1:1/proxygpt' });
    const code = await within(20_000, 'the process exits', run.exited);
    expect(code).toBe(2);
    expect(run.stderr()).toContain('PROXYGPT_REDIS_URL');
    expect(run.stderr()).not.toContain('pg-secret-5e6f');
  });

  it('exits 1 naming PROXYGPT_DATABASE_URL, password redacted, when the Postgres store cannot be opened', async () => {
    const dir = emptyDir();
    const run = runMain(dir, {
      OPENAI_API_KEY: UPSTREAM,
      PROXYGPT_API_KEY: KEY,
      PROXYGPT_DATABASE_URL: 'postgres://gateway:pg-secret-5e6f@127.0.0.1:1/proxygpt',
      PROXYGPT_LIMITER: 'memory',
      PROXYGPT_LIMITS_PATH: join(dir, 'limits.db'),
    });
    const code = await within(20_000, 'the process exits', run.exited);
    expect(code).toBe(1);
    expect(run.stderr()).toContain('proxygpt: could not start: PROXYGPT_DATABASE_URL (postgres://gateway:***@127.0.0.1:1/proxygpt): ');
    expect(run.stdout() + run.stderr()).not.toContain('pg-secret-5e6f');
  });

  it('reads .env from its working directory and serves', async () => {
    const dir = emptyDir();
    writeFileSync(
      join(dir, '.env'),
      [
        `OPENAI_API_KEY="${UPSTREAM}"`,
        `PROXYGPT_API_KEYS=${KEY}`,
        'OPENAI_BASE_URL=http://127.0.0.1:9/v1',
        'PORT=0',
        'HOST=127.0.0.1',
        `PROXYGPT_DATABASE_URL=${join(dir, 'db', 'proxygpt.db')}`,
        'USE_HOURLY_RATE_LIMIT=true',
        'PROXYGPT_HOURLY_RATE_LIMIT=7',
        '',
      ].join('\n'),
    );
    const run = runMain(dir, {});
    const listening = new Promise<string>((resolve, reject) => {
      const check = () => {
        const address = /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(run.stdout())?.[1];
        if (address) resolve(address);
      };
      run.child.stdout!.on('data', check);
      void run.exited.then((code) => reject(new Error(`exited with ${code}: ${run.stderr()}`)));
    });
    const url = await within(20_000, 'the server listens', listening);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    // The limit came from the .env file.
    const status = await fetch(`${url}/ratelimit`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ hourly_rate_limit: 7, hourly_api_usage: 0 });

    run.child.kill('SIGTERM');
    const code = await within(15_000, 'the server stops', run.exited);
    expect(code).toBe(0);
    expect(run.stdout() + run.stderr()).not.toContain(UPSTREAM);
  });

  it('lets the environment override .env', async () => {
    const dir = emptyDir();
    writeFileSync(join(dir, '.env'), `OPENAI_API_KEY=${UPSTREAM}\nPROXYGPT_API_KEY=${KEY}\nPORT=0\n`);
    const run = runMain(dir, { PORT: 'not-a-port' });
    const code = await within(20_000, 'the process exits', run.exited);
    expect(code).not.toBe(0);
    expect(run.stderr()).toContain('PORT');
  });
});
