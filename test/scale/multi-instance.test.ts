/**
 * Issue 9, exact across instances: two real gateway processes on one Postgres (keys, usage) and
 * one Redis (limits), as behind a load balancer. Concurrent calls spread over both admit exactly
 * the limit: a key's requests per hour, a key's token budget (held while in flight, settled to
 * what the upstream reported), calls in flight at once, the gateway's global hourly limit. A key
 * created on one instance works on the other at once, a key revoked on one is refused by the other
 * on its next call, and usage served by both is read from either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY, UPSTREAM_KEY } from '../helpers.js';
import { ADMIN_KEY, eventually } from '../keys/helpers.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { adminQuery, dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';

const postgres = await postgresTarget();
const redisUrl = await testRedisUrl();
const GLOBAL_HOURLY = 500;

let mock: MockOpenAI;
let instances: ServerProcess[] = [];
const schema = uniqueSchema('multi');
const prefix = uniquePrefix('multi');

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** A call with `key`: by default a chat completion; `body: null` sends none. */
async function send(base: string, key: string, init: { path?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const body = init.body === undefined ? { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } : init.body;
  const res = await fetch(`${base}${init.path ?? '/v1/chat/completions'}`, {
    method: init.method ?? 'POST',
    headers: { authorization: `Bearer ${key}`, ...(body === null ? {} : { 'content-type': 'application/json' }), ...init.headers },
    body: body === null ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}
const adminCall = (base: string, method: string, path: string, body: unknown = null) => send(base, ADMIN_KEY, { method, path: `/admin${path}`, body });
const rateLimitOf = async (base: string, key: string) => (await send(base, key, { method: 'GET', path: '/ratelimit', body: null })).body;
const keyUsed = async (base: string, key: string, limit: string) => (((await rateLimitOf(base, key)).key as { limits: Record<string, { used: number }> }).limits[limit]!.used);

/** `n` calls at once, alternating between the instances; the mock holds them all until every one is decided. */
async function burst(n: number, key: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer[]> {
  let answered = 0;
  const heldBefore = mock.held;
  const pending = Array.from({ length: n }, (_, i) =>
    send(instances[i % instances.length]!.base, key, { headers: { 'x-mock-hold': '1', ...headers }, body }).then((a) => {
      answered++;
      return a;
    }),
  );
  await eventually(`all ${n} calls decided`, () => answered + mock.held - heldBefore, (decided) => decided === n, 30_000);
  mock.release();
  return Promise.all(pending);
}
const count = (answers: Answer[], status: number) => answers.filter((a) => a.status === status).length;
/** Statuses and how often each came, for a failure message. */
const tally = (answers: Answer[]) => JSON.stringify(Object.fromEntries([...new Set(answers.map((a) => a.status))].map((s) => [s, count(answers, s)])));
const codes = (answers: Answer[]) => new Set(answers.filter((a) => a.status !== 200).map((a) => (a.body.error as { code?: string } | undefined)?.code));

const ready = postgres.available && redisUrl !== null;

describe.skipIf(!ready)('two instances on Postgres + Redis', () => {
  beforeAll(async () => {
    mock = await startMockOpenAI();
    await adminQuery(postgres.url, `CREATE SCHEMA ${schema}`);
    const url = new URL(postgres.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const env = {
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: mock.url,
      PROXYGPT_API_KEY: PROXY_KEY,
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_DATABASE_URL: url.toString(),
      PROXYGPT_REDIS_URL: redisUrl!,
      PROXYGPT_REDIS_PREFIX: prefix,
      // On a loaded 2-core machine Redis may answer a burst slowly: that must not turn into 503s here.
      PROXYGPT_REDIS_TIMEOUT_MS: '10000',
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: String(GLOBAL_HOURLY),
      LOG_LEVEL: 'warn',
    };
    // Both start at the same moment: migrations under the advisory lock must let both through.
    instances = await Promise.all([startServerProcess(env, 60_000), startServerProcess(env, 60_000)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()));
    await mock?.close();
    if (ready) {
      await dropSchema(postgres.url, schema);
      await deleteKeys(redisUrl!, prefix);
    }
  });

  it("a key created on one instance works on the other at once; its requests per hour hold exactly over both (240 at once, limit 50)", async () => {
    const [a, b] = instances;
    const created = await adminCall(a!.base, 'POST', '/keys', { name: 'team', requests_per_hour: 50 });
    expect(created.status).toBe(201);
    const key = String(created.body.key);
    expect((await send(b!.base, key)).status).toBe(200);

    const answers = await burst(240, key);
    expect(count(answers, 200), tally(answers)).toBe(49);
    expect(count(answers, 429), tally(answers)).toBe(191);
    expect(codes(answers)).toEqual(new Set(['rate_limit_exceeded']));
    // Both instances see the same window.
    for (const instance of instances) expect(await keyUsed(instance.base, key, 'requests_per_hour')).toBe(50);
  }, 60_000);

  it('a token budget is held across both while in flight and settles to what the upstream reported', async () => {
    const [a] = instances;
    const created = await adminCall(a!.base, 'POST', '/keys', { name: 'tokens', tokens_per_hour: 10_000 });
    const key = String(created.body.key);
    // Each call names max_tokens 900: its reservation is its prompt plus 900, so at most 11 fit.
    const answers = await burst(60, key, { 'x-mock-prompt-tokens': '20', 'x-mock-completion-tokens': '30' }, { model: 'gpt-4o-mini', max_tokens: 900, messages: [{ role: 'user', content: 'hi' }] });
    const admitted = count(answers, 200);
    expect(admitted).toBeGreaterThanOrEqual(1);
    expect(admitted).toBeLessThanOrEqual(11); // 11 × 901 ≤ 10,000 < 12 × 901: never more than the budget holds
    expect(count(answers, 429)).toBe(60 - admitted);
    // Settled everywhere to 50 tokens per admitted call.
    for (const instance of instances) {
      await eventually(
        'settled to the reported usage',
        () => keyUsed(instance.base, key, 'tokens_per_hour'),
        (used) => used === 50 * admitted,
      );
    }
  }, 60_000);

  it('calls in flight at once: a key with max_concurrent 7 admits exactly 7 of 80 spread over both', async () => {
    const created = await adminCall(instances[1]!.base, 'POST', '/keys', { name: 'concurrent', max_concurrent: 7 });
    const answers = await burst(80, String(created.body.key));
    expect(count(answers, 200)).toBe(7);
    expect(codes(answers)).toEqual(new Set(['concurrency_limit_exceeded']));
  }, 60_000);

  it('a key revoked on one instance is refused by the other on its next call', async () => {
    const [a, b] = instances;
    const created = await adminCall(a!.base, 'POST', '/keys', { name: 'leaver' });
    const key = String(created.body.key);
    expect((await send(b!.base, key)).status).toBe(200);
    expect((await adminCall(a!.base, 'POST', `/keys/${String(created.body.id)}/revoke`)).status).toBe(200);
    const refused = await send(b!.base, key);
    expect(refused.status).toBe(401);
  });

  it('usage served by both instances is read from either', async () => {
    for (const instance of instances) {
      await eventually(
        'the usage records of both instances are written',
        async () => (await adminCall(instance.base, 'GET', '/usage?key=team&since=1h')).body as { requests?: number },
        (usage) => usage.requests === 240 + 1,
        10_000,
      );
    }
  });

  it(`the global hourly limit holds exactly over both (${GLOBAL_HOURLY} per hour)`, async () => {
    const remaining = GLOBAL_HOURLY - Number((await rateLimitOf(instances[0]!.base, PROXY_KEY)).hourly_api_usage);
    expect(remaining).toBeGreaterThan(0);
    const answers = await burst(remaining + 150, PROXY_KEY);
    expect(count(answers, 200), tally(answers)).toBe(remaining);
    expect(count(answers, 429), tally(answers)).toBe(150);
  }, 120_000);
});
