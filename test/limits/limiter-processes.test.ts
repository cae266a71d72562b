/**
 * Who counts one database's limits, with real gateway processes: a PROXYGPT_WORKERS=2 gateway on
 * the default limiter (its primary keeps the limits in memory) refuses a second, single-worker
 * gateway on the same file at start (exit 1, naming the primary's process); with
 * PROXYGPT_LIMITER=sqlite two single-worker gateways share one file and together admit exactly
 * the limit.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { chatBody, PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';
import { freePort, ROOT, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { countStatuses } from '../support/gateway-process.js';

const LIMIT = 10;

let mock: MockOpenAI;
let dir: string;
let servers: ServerProcess[] = [];
const agent = new Agent({ connections: 16, pipelining: 0 });

beforeAll(async () => {
  mock = await startMockOpenAI();
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 20_000);
afterAll(async () => {
  await agent.close();
  await mock?.close();
});

function gatewayEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: mock.url,
    PROXYGPT_API_KEY: PROXY_KEY,
    PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
    USE_HOURLY_RATE_LIMIT: 'true',
    PROXYGPT_HOURLY_RATE_LIMIT: String(LIMIT),
    USE_DAILY_RATE_LIMIT: 'false',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

async function startGateway(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env);
  servers.push(server);
  return server;
}

/** Starts a gateway as startServerProcess does and waits (at most 20 s) for it to exit. */
async function runUntilExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, PORT: String(await freePort()), HOST: '127.0.0.1', ...env },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
  clearTimeout(timer);
  return { code, stderr };
}

async function chat(base: string): Promise<number> {
  const res = await request(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
    body: chatBody(),
    dispatcher: agent,
  });
  await res.body.dump();
  return res.statusCode;
}

describe('gateway processes on one database', () => {
  it('a two-worker gateway on the default limiter refuses a second gateway at start, naming its primary', async () => {
    dir = tempDir();
    const cluster = await startGateway(gatewayEnv({ PROXYGPT_WORKERS: '2' }));
    const primaryPid = cluster.child.pid!;

    const second = await runUntilExit(gatewayEnv());
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`proxygpt: could not start: another ProxyGPT process (process ${primaryPid} on ${hostname()}) is counting limits in this database`);

    // The cluster keeps serving, and its limit is still whole.
    expect(await chat(cluster.base)).toBe(200);
    const res = await request(`${cluster.base}/ratelimit`, { headers: { authorization: `Bearer ${PROXY_KEY}` }, dispatcher: agent });
    expect(await res.body.json()).toMatchObject({ hourly_rate_limit: LIMIT, hourly_api_usage: 1 });
  });

  it('with PROXYGPT_LIMITER=sqlite two single-worker gateways share the file and together admit exactly the limit', async () => {
    dir = tempDir();
    const env = gatewayEnv({ PROXYGPT_LIMITER: 'sqlite' });
    const [a, b] = [await startGateway(env), await startGateway(env)];
    mock.requests.length = 0;

    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => chat((i % 2 === 0 ? a : b).base)));
    expect(countStatuses(statuses)).toEqual({ ok: LIMIT, limited: 30 - LIMIT });
    expect(mock.requests).toHaveLength(LIMIT);
    for (const server of [a, b]) expect(server.stderr()).not.toMatch(/SQLITE_BUSY|could not start/);
  });
});
