/**
 * Property tests of body inspection and policy over real HTTP (issue 8, "Prove it"): one gateway
 * (stored key with token and spend limits, environment keys, model and endpoint allowlists) in
 * front of the mock upstream, reused by every run. Whatever the body (JSON-ish text with the fields
 * the gateway reads given arbitrary values, duplicate keys, deep nesting, raw numbers, any JSON,
 * garbage) or the method and path (every traversal spelling), the answer is a forward (the mock saw
 * it; its status comes back) or a 4xx of the gateway's own in OpenAI's error shape, never a 5xx;
 * what was refused before forwarding reserved and counted nothing and left no usage record (a 429
 * is the limiter's refusal); a forwarded path is an allowed endpoint without any traversal.
 * Bounded: a fixed seed (arbitraries.ts) and a few hundred runs each.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { ADMIN_KEY, createKey, eventually, rateLimit, type CreatedKey } from '../keys/helpers.js';
import { watchLimiter, type LimiterWatch } from '../call/watch-limiter.js';
import { bodyText, hasTraversal, requestLine, settings } from './arbitraries.js';
import { expectGatewayError, sendFetch, sendRaw, type Answer } from './send.js';

const ENDPOINTS = ['POST /v1/chat/completions', 'POST /v1/embeddings', 'POST /v1/responses', 'GET /v1/models', 'GET /v1/models/*'];

let gw: TestGateway;
let stored: CreatedKey;
let seen: LimiterWatch;
const forwardedIds = new Set<string>();
const refusedByLimiterIds = new Set<string>();
const statuses = new Map<number, number>();

beforeAll(async () => {
  gw = await startGateway({
    env: {
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      LOG_LEVEL: 'warn',
      PROXYGPT_ALLOWED_ENDPOINTS: ENDPOINTS.join(', '),
      PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small',
      PROXYGPT_LEGACY_MODEL: 'gpt-4o-mini',
      PROXYGPT_MAX_BODY_BYTES: String(64 * 1024),
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: '1000000',
    },
  });
  stored = await createKey(gw, { name: 'property-metered', tokens_per_hour: 1_000_000_000, usd_per_day: 1_000_000 });
  seen = watchLimiter(gw);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await gw?.close();
});

const keyFor = (kind: 'env' | 'stored' | 'none') => (kind === 'env' ? PROXY_KEY : kind === 'stored' ? stored.key : null);

/** The gateway's own routes, which answer 2xx without going upstream (documentation, health, /ratelimit). */
const OWN_ROUTE = /^\/(healthz|readyz|ratelimit|openapi\.json|docs|redoc)(\/|\?|$)/;

/**
 * Sends one request through `send` and checks the property for its answer (`path`: what was
 * asked for); returns the forwarded request's URL, if any.
 */
async function checked(what: string, path: string, send: () => Promise<Answer>, hasBody = true): Promise<string | null> {
  const before = { upstream: gw.mock.requests.length, reserved: seen.reserved.length, refused: seen.refused };
  const answer = await send();
  statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
  expect(answer.status, `${what}: ${answer.body.slice(0, 200)}`).toBeLessThan(500);
  const id = answer.headers['x-proxygpt-request-id'] ?? '';
  const reached = gw.mock.requests.length - before.upstream;
  if (reached === 1) {
    expect(seen.reserved.length - before.reserved, `${what}: a forward is reserved once`).toBe(1);
    forwardedIds.add(id);
    return gw.mock.requests.at(-1)!.url;
  }
  expect(reached, `${what}: reached the upstream ${reached} times`).toBe(0);
  expect(seen.reserved.length - before.reserved, `${what}: not forwarded, yet reserved`).toBe(0);
  if (answer.status < 400) {
    expect(path, `${what}: ${answer.status} without a forward`).toMatch(OWN_ROUTE);
    return null;
  }
  expectGatewayError(what, answer, {}, hasBody);
  if (answer.status === 429) {
    expect(seen.refused - before.refused).toBe(1);
    refusedByLimiterIds.add(id);
  } else {
    expect(seen.refused - before.refused, `${what}: refused before the limiter, yet it was asked`).toBe(0);
  }
  return null;
}

describe('any body: a forward or a 4xx in the error shape, never a 5xx; refusals count nothing', () => {
  it('300 bodies on the JSON routes, with each kind of key', async () => {
    await fc.assert(
      fc.asyncProperty(
        bodyText,
        fc.constantFrom('/v1/chat/completions', '/v1/embeddings', '/v1/responses', '/api/openai/completions/gpt3'),
        fc.constantFrom('env', 'stored', 'stored', 'none') as fc.Arbitrary<'env' | 'stored' | 'none'>,
        async (body, path, kind) => {
          const key = keyFor(kind);
          const headers: Record<string, string> = { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) };
          await checked(`${kind} ${path} ${body.slice(0, 120)}`, path, () => sendFetch(`${gw.url}${path}`, { method: 'POST', headers, body }));
        },
      ),
      settings(300),
    );
    // The generators reach both sides: forwards and refusals of several kinds.
    expect(forwardedIds.size).toBeGreaterThan(30);
    expect([...statuses.keys()].filter((s) => s >= 400 && s < 500).length).toBeGreaterThanOrEqual(3);
  });
});

describe('any method and path (raw, as sent): never a 5xx; a forwarded path is an allowed endpoint without traversal', () => {
  it('300 requests', async () => {
    let forwards = 0;
    await fc.assert(
      fc.asyncProperty(requestLine, fc.constantFrom('env', 'stored', 'none') as fc.Arbitrary<'env' | 'stored' | 'none'>, async ([verb, path], kind) => {
        const key = keyFor(kind);
        const body = verb === 'POST' || verb === 'PUT' || verb === 'PATCH' ? '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' : null;
        const request =
          `${verb} ${path} HTTP/1.1\r\nHost: x\r\n${key === null ? '' : `Authorization: Bearer ${key}\r\n`}` +
          `${body === null ? '' : `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`}Connection: close\r\n\r\n${body ?? ''}`;
        const url = await checked(`${verb} ${path} (${kind})`, path, () => sendRaw(gw.url, request, { head: verb === 'HEAD' }), verb !== 'HEAD');
        if (url === null) return;
        forwards++;
        // What went upstream is what the policy allowed, and no reader can resolve it elsewhere.
        const upstreamPath = url.split('?')[0]!;
        expect(hasTraversal(url), `${path} went upstream as ${url}`).toBe(false);
        expect(
          ENDPOINTS.some((rule) => {
            const [m, p] = rule.split(' ') as [string, string];
            return m === verb && (p.endsWith('/*') ? upstreamPath.startsWith(p.slice(0, -1)) && upstreamPath.length > p.length - 1 : upstreamPath === p);
          }),
          `${verb} ${upstreamPath} is no allowed endpoint`,
        ).toBe(true);
      }),
      settings(300),
    );
    expect(forwards).toBeGreaterThanOrEqual(10);
  });
});

describe('after the runs', () => {
  it('usage records: exactly the forwarded calls and the limiter refusals', async () => {
    const expected = forwardedIds.size + refusedByLimiterIds.size;
    await eventually('every call is recorded', () => seen.records.length, (n) => n >= expected);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(new Set(seen.records.map((r) => r.requestId))).toEqual(new Set([...forwardedIds, ...refusedByLimiterIds]));
    for (const record of seen.records) if (refusedByLimiterIds.has(record.requestId)) expect(record.promptTokens + record.completionTokens).toBe(0);
  });

  it('counted: the global limit saw exactly the forwarded calls; every hold was committed once', async () => {
    expect(((await rateLimit(gw, PROXY_KEY)).body as { hourly_api_usage: number }).hourly_api_usage).toBe(forwardedIds.size);
    const held = seen.reserved.filter((id) => id !== '');
    await eventually('every held call is settled', () => seen.committed.length, (n) => n >= held.length);
    expect([...seen.committed].sort()).toEqual([...held].sort());
    expect(seen.released).toEqual([]);
  });

  it('the gateway still serves', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
});
