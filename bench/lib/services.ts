/**
 * The processes under test: the mock upstream (bench/mock-server.ts under tsx), the gateway
 * (dist/main.js, built first when dist is missing or older than src), configured as in production:
 * hourly and daily limits on (huge, so nothing is refused), usage recorded, SQLite file in a temp
 * dir, admin API on (for the stored key of the common team set-up), and the bare Node
 * pass-through (bench/passthrough.ts under tsx).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_KEY, CHAT_PATH, PROXY_KEY, UPSTREAM_KEY, chatBody } from './targets.js';
import { freePort, httpProbe, startChild, waitReady, type Child } from './procs.js';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when forced, missing, or older than anything under src/. Returns what it did. */
export function buildIfStale(force: boolean): string {
  const main = join(ROOT, 'dist', 'main.js');
  const stale = !existsSync(main) || statSync(main).mtimeMs < newestMtime(join(ROOT, 'src'));
  if (!force && !stale) return 'dist/ up to date (not rebuilt)';
  const started = Date.now();
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  return `built dist/ (${((Date.now() - started) / 1000).toFixed(1)} s)`;
}

export interface Service {
  child: Child;
  port: number;
}

export async function startMock(logDir: string): Promise<Service> {
  const port = await freePort();
  const child = startChild('mock', process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'mock-server.ts'), String(port)], join(logDir, 'mock.log'), {
    cwd: ROOT,
    ipc: true,
  });
  await waitReady(child, httpProbe(`http://127.0.0.1:${port}/v1/models`));
  return { child, port };
}

/** The bare Node pass-through in front of the mock (bench/passthrough.ts). */
export async function startPassThrough(mockPort: number, logDir: string, name = 'bare-node', nodeFlags: string[] = []): Promise<Service> {
  const port = await freePort();
  const child = startChild(name, process.execPath, [...nodeFlags, '--import', 'tsx', join(ROOT, 'bench', 'passthrough.ts'), String(port), `http://127.0.0.1:${mockPort}`], join(logDir, `${name}.log`), {
    cwd: ROOT,
    ipc: true,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' },
  });
  await waitReady(child, httpProbe(`http://127.0.0.1:${port}/v1/models`));
  return { child, port };
}

/**
 * The common team set-up: a stored key with request and token limits per hour and day, so every
 * call is metered (estimate, reserve, cap, settle, usage record), set so high that nothing is
 * refused during the run. Created over the admin API; returns the key's secret.
 */
export const STORED_KEY_LIMITS = { requests_per_hour: 1e9, requests_per_day: 1e9, tokens_per_hour: 1e12, tokens_per_day: 1e12 };

export async function createStoredKey(gatewayPort: number, name = 'bench-team'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${gatewayPort}/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ name, ...STORED_KEY_LIMITS }),
  });
  const body = (await res.json()) as { key?: string };
  if (res.status !== 201 || typeof body.key !== 'string') throw new Error(`creating a stored key answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  const check = await fetch(`http://127.0.0.1:${gatewayPort}${CHAT_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${body.key}` },
    body: chatBody(),
  });
  const text = await check.text();
  if (check.status !== 200) throw new Error(`a chat call with the stored key answered ${check.status}: ${text.slice(0, 300)}`);
  return body.key;
}

/** What the gateway recorded for a key over the last day (GET /admin/usage), proof that its calls were metered. */
export async function keyUsage(gatewayPort: number, key = 'bench-team'): Promise<{ requests: number; total_tokens: number; usd: number }> {
  const res = await fetch(`http://127.0.0.1:${gatewayPort}/admin/usage?key=${encodeURIComponent(key)}&since=1d`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  if (res.status !== 200) throw new Error(`GET /admin/usage answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as { requests: number; total_tokens: number; usd: number };
}

export interface GatewayOptions {
  workers: number;
  logLevel: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  name?: string;
  /** Settings added to (or replacing) the bench's own, e.g. a Postgres store and a Redis limiter. */
  env?: Record<string, string>;
  /** The checkout whose `dist/main.js` runs (default: this one; bench/compare-builds.ts runs another). */
  root?: string;
}

export function gatewayEnv(mockPort: number, port: number, dbPath: string, options: GatewayOptions): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: `http://127.0.0.1:${mockPort}/v1`,
    PROXYGPT_API_KEY: PROXY_KEY,
    PROXYGPT_ADMIN_KEY: ADMIN_KEY,
    USE_HOURLY_RATE_LIMIT: 'true',
    PROXYGPT_HOURLY_RATE_LIMIT: '1000000000',
    USE_DAILY_RATE_LIMIT: 'true',
    PROXYGPT_DAILY_RATE_LIMIT: '1000000000',
    PROXYGPT_DATABASE_URL: dbPath,
    PROXYGPT_WORKERS: String(options.workers),
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: options.logLevel,
    ...options.env,
  };
}

/** Starts dist/main.js (cwd: a temp dir, so no project .env is read) and waits for one 200. */
export async function startGateway(mockPort: number, dir: string, options: GatewayOptions): Promise<Service> {
  const name = options.name ?? `gateway-${options.workers}w`;
  const port = await freePort();
  const env = gatewayEnv(mockPort, port, join(dir, `${name}.db`), options);
  const child = startChild(name, process.execPath, [...(options.nodeFlags ?? []), join(options.root ?? ROOT, 'dist', 'main.js')], join(dir, `${name}.log`), { cwd: dir, env });
  await waitReady(child, httpProbe(`http://127.0.0.1:${port}/healthz`));
  const res = await fetch(`http://127.0.0.1:${port}${CHAT_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PROXY_KEY}` },
    body: chatBody(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${name} answered ${res.status} to a chat call: ${text.slice(0, 300)}`);
  return { child, port };
}
