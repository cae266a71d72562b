/**
 * The real server as a child process with PROXYGPT_WORKERS=4: four cluster workers share one
 * SQLite file, and a burst of concurrent requests spread over them is still admitted exactly up to
 * the global limit (BEGIN IMMEDIATE serialises the limiter across processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import type { MockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY } from '../helpers.js';
import { chatBurst, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import type { ServerProcess } from '../support/server-process.js';

const LIMIT = 50;
const REQUESTS = 120;

let mock: MockOpenAI;
let server: ServerProcess;
let base: string;
let gateway: GatewayProcess | undefined;
const agent = new Agent({ connections: 32, pipelining: 0 });

beforeAll(async () => {
  gateway = await startGatewayProcess({
    PROXYGPT_API_KEY: PROXY_KEY,
    PROXYGPT_WORKERS: '4',
    USE_HOURLY_RATE_LIMIT: 'true',
    PROXYGPT_HOURLY_RATE_LIMIT: String(LIMIT),
    USE_DAILY_RATE_LIMIT: 'false',
    PROXYGPT_RATE_LIMIT_COUNT: 'all',
    // info: each worker logs one "proxied" line per request with its pid, which shows the spread.
    LOG_LEVEL: 'info',
  }, { workersListening: 4 }); // the burst goes to every worker, not only to those up first
  ({ mock, server } = gateway);
  base = server.base;
}, 25_000);

afterAll(async () => {
  await gateway?.stop();
  await agent.close();
}, 15_000);

interface ProxiedLine {
  msg: string;
  pid: number;
  status: number;
}

function proxiedLines(): ProxiedLine[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as ProxiedLine)
    .filter((line) => line.msg === 'proxied');
}

describe('four cluster workers on one SQLite file', () => {
  it('admit exactly the global limit out of a concurrent burst', async () => {
    expect(await chatBurst(base, REQUESTS, { dispatcher: agent, delayMs: 20 })).toEqual({ ok: LIMIT, limited: REQUESTS - LIMIT });
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
    expect(pids.has(server.child.pid!)).toBe(false); // the primary serves nothing itself
    expect(pids.size).toBeGreaterThan(1);
    expect(server.stderr()).not.toMatch(/SQLITE_BUSY|exited/);
  });
});
