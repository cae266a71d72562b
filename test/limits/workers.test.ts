/**
 * The real server as a child process with PROXYGPT_WORKERS=4: four cluster workers share one
 * SQLite file, and a burst of concurrent requests spread over them is still admitted exactly up to
 * the global limit (BEGIN IMMEDIATE serialises the limiter across processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { chatBody, PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const LIMIT = 50;
const REQUESTS = 120;

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => done(port));
    });
  });
}

let mock: MockOpenAI;
let child: ChildProcess;
let exited: Promise<number | null>;
let dir: string;
let base: string;
let stdout = '';
let stderr = '';
const agent = new Agent({ connections: 32, pipelining: 0 });

async function waitUntilHealthy(url: string, deadline: number): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not become healthy: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  mock = await startMockOpenAI();
  dir = tempDir();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    detached: true, // own process group: the primary and its workers are stopped together
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dir,
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: mock.url,
      PROXYGPT_API_KEY: PROXY_KEY,
      PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
      PROXYGPT_WORKERS: '4',
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: String(LIMIT),
      USE_DAILY_RATE_LIMIT: 'false',
      PROXYGPT_RATE_LIMIT_COUNT: 'all',
      PORT: String(port),
      HOST: '127.0.0.1',
      // info: each worker logs one "proxied" line per request with its pid, which shows the spread.
      LOG_LEVEL: 'info',
    },
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  exited = new Promise((done) => child.once('exit', (code) => done(code)));
  await waitUntilHealthy(base, Date.now() + 15_000);
}, 20_000);

afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null) {
    process.kill(-child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 8_000);
    await exited;
    clearTimeout(timer);
  }
  await agent.close();
  await mock?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 15_000);

interface ProxiedLine {
  msg: string;
  pid: number;
  status: number;
}

function proxiedLines(): ProxiedLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as ProxiedLine)
    .filter((line) => line.msg === 'proxied');
}

describe('four cluster workers on one SQLite file', () => {
  it('admit exactly the global limit out of a concurrent burst', async () => {
    const send = async () => {
      const res = await request(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json', 'x-mock-delay-ms': '20' },
        body: chatBody(),
        dispatcher: agent,
      });
      await res.body.dump();
      return res.statusCode;
    };
    const results = await Promise.all(Array.from({ length: REQUESTS }, send));
    const count = { ok: results.filter((s) => s === 200).length, limited: results.filter((s) => s === 429).length };
    expect(count).toEqual({ ok: LIMIT, limited: REQUESTS - LIMIT });
    expect(mock.requests.length).toBe(LIMIT);

    // Any worker reports the same shared count.
    for (let i = 0; i < 4; i++) {
      const res = await request(`${base}/ratelimit`, { headers: { authorization: `Bearer ${PROXY_KEY}` }, dispatcher: agent });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toMatchObject({ hourly_rate_limit: LIMIT, hourly_api_usage: LIMIT, hourly_remaining: 0 });
    }

    // The burst really was spread over several worker processes (their log lines carry the pid).
    const deadline = Date.now() + 5_000;
    while (proxiedLines().length < REQUESTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const lines = proxiedLines();
    expect(lines.length).toBe(REQUESTS);
    expect(lines.filter((l) => l.status === 200).length).toBe(LIMIT);
    const pids = new Set(lines.map((l) => l.pid));
    expect(pids.has(child.pid!)).toBe(false); // the primary serves nothing itself
    expect(pids.size).toBeGreaterThan(1);
    expect(stderr).not.toMatch(/SQLITE_BUSY|exited/);
  });
});
