/**
 * Issue 10, /metrics with PROXYGPT_WORKERS=2: the real server as a child process, calls spread
 * over several keep-alive connections that land on both workers (checked with the worker pid each
 * call's log line carries), then /metrics read over every connection, so that each worker answers
 * scrapes, and each answer must hold the figures of all calls: the calls, tokens, USD and
 * histogram counts of both workers, and the 429s of the global limit (which the primary decides).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { chatBody, PROXY_KEY, UPSTREAM_KEY } from '../helpers.js';
import { ADMIN_KEY } from '../keys/helpers.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import type { ServerProcess } from '../support/server-process.js';
import { parseExposition, select, sumOf, valueOf, type Exposition } from './prometheus-text.js';

const CONNECTIONS = 8;
const ROUNDS = 5;
/** Calls admitted: every connection, every round. The hourly limit is exactly that many. */
const ADMITTED = CONNECTIONS * ROUNDS;
/** Calls past the hourly limit, on as many connections (both workers among them). */
const REFUSED = 4;
const PROMPT = 20;
const COMPLETION = 5;
/** gpt-4o-mini at OpenAI's published $0.15 / $0.60 per million tokens, in micro-dollars per call (whole: the gateway rounds each call up). */
const MICRO_USD_PER_CALL = PROMPT * 0.15 + COMPLETION * 0.6;
const CHAT = 'POST /v1/chat/completions';

let server: ServerProcess;
let gateway: GatewayProcess | undefined;
let clients: Client[] = [];

beforeAll(async () => {
  gateway = await startGatewayProcess(
    {
      PROXYGPT_API_KEY: PROXY_KEY,
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_WORKERS: '2',
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: String(ADMITTED),
      // info: every proxied call logs one line with its worker's pid and its request id.
      LOG_LEVEL: 'info',
    },
    { workersListening: 2 },
  );
  ({ server } = gateway);
  clients = Array.from({ length: CONNECTIONS }, () => new Client(server.base, { pipelining: 1, keepAliveTimeout: 60_000 }));
}, 30_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.destroy()));
  await gateway?.stop();
}, 15_000);

async function chat(client: Client): Promise<{ status: number; requestId: string }> {
  const res = await client.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: {
      authorization: `Bearer ${PROXY_KEY}`,
      'content-type': 'application/json',
      'x-mock-prompt-tokens': String(PROMPT),
      'x-mock-completion-tokens': String(COMPLETION),
    },
    body: chatBody(),
  });
  await res.body.text();
  return { status: res.statusCode, requestId: String(res.headers['x-proxygpt-request-id']) };
}

async function scrape(client: Client, authorization = `Bearer ${ADMIN_KEY}`): Promise<{ status: number; text: string }> {
  const res = await client.request({ method: 'GET', path: '/metrics', headers: { authorization } });
  return { status: res.statusCode, text: await res.body.text() };
}

/** The pid of the worker that logged request `requestId` (waits for its log line). */
async function workerOf(requestId: string): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    for (const line of server.stdout().split('\n')) {
      if (!line.startsWith('{') || !line.includes(requestId)) continue;
      const entry = JSON.parse(line) as { reqId?: string; pid?: number; msg?: string };
      if (entry.reqId === requestId && entry.msg === 'proxied' && entry.pid !== undefined) return entry.pid;
    }
    if (Date.now() > deadline) throw new Error(`no log line for request ${requestId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('/metrics with 2 workers', () => {
  const workerOfConnection: number[] = [];

  it('the calls are served by both workers, and the limit refuses exactly the calls past it', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(clients.map(chat));
      expect(answers.map((a) => a.status)).toEqual(clients.map(() => 200));
      if (round === 0) for (const a of answers) workerOfConnection.push(await workerOf(a.requestId));
    }
    expect(new Set(workerOfConnection).size).toBe(2);
    expect(workerOfConnection).not.toContain(server.child.pid);
    // The refused calls go over connections of both workers, half each.
    const workers = [...new Set(workerOfConnection)];
    const refusing = workers.flatMap((pid) => clients.filter((_, i) => workerOfConnection[i] === pid).slice(0, REFUSED / 2));
    expect(refusing).toHaveLength(REFUSED);
    const refused = await Promise.all(refusing.map(chat));
    expect(refused.map((a) => a.status)).toEqual(refusing.map(() => 429));
  });

  it('every scrape, whichever worker answers it, shows the calls of both', async () => {
    const check = (e: Exposition, text: string) => {
      expect(valueOf(e, 'proxygpt_requests_total', { key: 'env-key-1', endpoint: CHAT, model: 'gpt-4o-mini', status: '200' })).toBe(ADMITTED);
      expect(valueOf(e, 'proxygpt_requests_total', { key: 'env-key-1', endpoint: CHAT, model: 'gpt-4o-mini', status: '429' })).toBe(REFUSED);
      expect(sumOf(e, 'proxygpt_requests_total')).toBe(ADMITTED + REFUSED);
      expect(valueOf(e, 'proxygpt_tokens_total', { key: 'env-key-1', model: 'gpt-4o-mini', type: 'prompt' })).toBe(ADMITTED * PROMPT);
      expect(valueOf(e, 'proxygpt_tokens_total', { key: 'env-key-1', model: 'gpt-4o-mini', type: 'completion' })).toBe(ADMITTED * COMPLETION);
      expect(valueOf(e, 'proxygpt_cost_usd_total', { key: 'env-key-1', model: 'gpt-4o-mini' })).toBeCloseTo((ADMITTED * MICRO_USD_PER_CALL) / 1e6, 12);
      expect(valueOf(e, 'proxygpt_rate_limited_total', { limit: 'hourly' })).toBe(REFUSED);
      expect(valueOf(e, 'proxygpt_request_duration_seconds_count', { endpoint: CHAT })).toBe(ADMITTED + REFUSED);
      expect(valueOf(e, 'proxygpt_request_duration_seconds_bucket', { endpoint: CHAT, le: '+Inf' })).toBe(ADMITTED + REFUSED);
      expect(valueOf(e, 'proxygpt_upstream_duration_seconds_count', { endpoint: CHAT })).toBe(ADMITTED);
      expect(valueOf(e, 'proxygpt_inflight_requests', {})).toBe(0);
      expect(valueOf(e, 'proxygpt_open_streams', {})).toBe(0);
      expect(e.types.get('proxygpt_request_duration_seconds')).toBe('histogram');
      // The process metrics of the workers, merged as prom-client aggregates them.
      expect(select(e, 'process_cpu_user_seconds_total')).toHaveLength(1);
      expect(select(e, 'nodejs_version_info')).toHaveLength(1);
      for (const secret of [PROXY_KEY, ADMIN_KEY, UPSTREAM_KEY]) expect(text.includes(secret)).toBe(false);
    };
    // The last calls are counted once they are settled, a moment after their answers.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const first = await scrape(clients[0]!);
      expect(first.status, first.text).toBe(200);
      if (sumOf(parseExposition(first.text), 'proxygpt_requests_total') === ADMITTED + REFUSED || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // Over every connection, twice: both workers answer scrapes, several at once too.
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(clients.map((c) => scrape(c)));
      for (const [i, answer] of answers.entries()) {
        expect(answer.status, `connection ${i} (worker ${workerOfConnection[i]})`).toBe(200);
        check(parseExposition(answer.text), answer.text);
      }
    }
  });

  it('refuses a scrape without the admin key on every worker', async () => {
    const answers = await Promise.all(clients.map((c) => scrape(c, `Bearer ${PROXY_KEY}`)));
    expect(answers.map((a) => a.status)).toEqual(clients.map(() => 401));
  });
});
