/**
 * The real server as a child process with PROXYGPT_WORKERS=2 and a global limit large enough for
 * leases (src/limits/cluster-leases.ts): a burst past the limit is admitted exactly up to it, the
 * upstream sees exactly that many calls, and once the burst is over the shared count is the limit
 * (what the leases held is reported and given back). That a lease is called back before anyone is
 * refused is cluster-leases.test.ts's to show (an idle worker's lease; here both workers spend theirs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import type { MockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY } from '../helpers.js';
import { chatBurst, startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import type { ServerProcess } from '../support/server-process.js';
import { AMPLE_LEASES, LEASE_CALLS } from '../../src/limits/cluster-leases.js';

// Room for several leases, and a burst well past it.
const LIMIT = LEASE_CALLS * AMPLE_LEASES * 2 + 37;
const REQUESTS = LIMIT + 250;

let mock: MockOpenAI;
let server: ServerProcess;
let gateway: GatewayProcess | undefined;
const agent = new Agent({ connections: 32, pipelining: 0 });

beforeAll(async () => {
  gateway = await startGatewayProcess({
    PROXYGPT_API_KEY: PROXY_KEY,
    PROXYGPT_WORKERS: '2',
    USE_HOURLY_RATE_LIMIT: 'true',
    PROXYGPT_HOURLY_RATE_LIMIT: String(LIMIT),
    USE_DAILY_RATE_LIMIT: 'false',
    PROXYGPT_RATE_LIMIT_COUNT: 'all',
    LOG_LEVEL: 'warn',
  });
  ({ mock, server } = gateway);
}, 25_000);

afterAll(async () => {
  await gateway?.stop();
  await agent.close();
}, 15_000);

describe('two cluster workers with leases', () => {
  it('admit exactly the global limit out of a burst past it, and count exactly that', async () => {
    expect(await chatBurst(server.base, REQUESTS, { dispatcher: agent, delayMs: 5 })).toEqual({ ok: LIMIT, limited: REQUESTS - LIMIT });
    expect(mock.requests.length).toBe(LIMIT);
    // Within a report interval or two every lease is reported and given back: the count is exact.
    await expect
      .poll(async () => {
        const res = await request(`${server.base}/ratelimit`, { headers: { authorization: `Bearer ${PROXY_KEY}` }, dispatcher: agent });
        return (await res.body.json()) as Record<string, unknown>;
      })
      .toMatchObject({ hourly_rate_limit: LIMIT, hourly_api_usage: LIMIT, hourly_remaining: 0 });
    expect(server.stderr()).not.toMatch(/exited|error/i);
  });
});
