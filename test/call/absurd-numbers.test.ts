/**
 * Issue 8, defect 3: absurd numbers. For a key with token or spend limits the gateway reads the
 * completion budget (`max_tokens`, `max_completion_tokens`, `max_output_tokens`, times `n`) to
 * reserve: a value that is not an integer in range (1e300, 2^53-1, negative, fractional, text) is
 * a 400 naming the field, before admission (nothing reserved, recorded or sent upstream); a valid
 * budget larger than the key's limit is the 429 that says so. A key without such limits has its
 * numbers passed on for the upstream to judge. An upstream 2xx that reports absurd token counts
 * (past 2^53, negative, fractional, text; JSON or stream) is still recorded, clamped to
 * 0..2,147,483,647 per count, with a warning that carries no secret, and its reservation is
 * committed once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { authHeaders, PROXY_KEY, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import { admin, ADMIN_KEY, createKey, eventually, rateLimit, startAdminGateway, type CreatedKey } from '../keys/helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { watchLimiter, type LimiterWatch } from './watch-limiter.js';

/** The largest token count the gateway records for one count of one call (documented). */
const MAX_COUNT = 2_147_483_647;

let gw: TestGateway;
let tokensKey: CreatedKey;
let spendKey: CreatedKey;
let reporting: CreatedKey;
let seen: LimiterWatch;

beforeAll(async () => {
  gw = await startAdminGateway({ PROXYGPT_RATE_LIMIT_COUNT: 'success', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '1000' });
  tokensKey = await createKey(gw, { name: 'tokens', tokens_per_hour: 1_000_000 });
  spendKey = await createKey(gw, { name: 'spend', usd_per_day: 5 });
  reporting = await createKey(gw, { name: 'reporting', tokens_per_hour: 1e15, usd_per_day: 1e9 });
  seen = watchLimiter(gw);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await gw?.close();
});
afterEach(() => seen.reset());

async function post(key: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { ...authHeaders(key), ...headers }, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as unknown) : undefined };
}

/** A chat body with `extra` (raw JSON text, so that numbers arrive as written) as its last members. */
const chat = (extra: string, stream = false) => `{"model":"gpt-4o-mini","stream":${stream},"messages":[{"role":"user","content":"hi there"}],${extra}}`;

const limitsOf = async (key: CreatedKey) => (await rateLimit(gw, key.key)).body.key!.limits;

describe('a key with token or spend limits: the completion budget must be a sane integer', () => {
  const invalid: [string, string][] = [
    ['max_tokens', '1e300'],
    ['max_tokens', '9007199254740991'],
    ['max_tokens', '99999999999999999999'],
    ['max_tokens', '2147483648'],
    ['max_tokens', '1e400'], // JSON.parse: Infinity
    ['max_tokens', '-1'],
    ['max_tokens', '1.5'],
    ['max_tokens', '"100"'],
    ['max_tokens', 'true'],
    ['max_tokens', '[100]'],
    ['max_completion_tokens', '-0.5'],
    ['max_completion_tokens', '{"value":10}'],
    ['max_output_tokens', '1e300'],
    ['n', '1e20'],
    ['n', '0'],
    ['n', '129'],
    ['n', '2.5'],
    ['n', '"2"'],
  ];
  for (const [field, value] of invalid) {
    for (const which of ['tokens', 'spend'] as const) {
      it(`${field}: ${value} is a 400 for the ${which} key, nothing counted`, async () => {
        const key = which === 'tokens' ? tokensKey : spendKey;
        const before = { upstream: gw.mock.requests.length, limits: await limitsOf(key) };
        const res = await post(key.key, chat(`"${field}":${value}`));
        expect(res.status, res.text).toBe(400);
        expect(res.json).toEqual({ error: { message: expect.stringContaining(field), type: 'invalid_request_error', code: 'invalid_request', param: field } });
        expect(gw.mock.requests.length).toBe(before.upstream);
        expect(seen.reserved).toEqual([]);
        expect(seen.refused).toBe(0);
        expect(await limitsOf(key)).toEqual(before.limits);
        await new Promise((resolve) => setTimeout(resolve, 30));
        expect(seen.records).toEqual([]);
      });
    }
  }

  it('null counts as not named (the default budget is reserved and sent as the cap)', async () => {
    const res = await post(tokensKey.key, chat('"max_tokens":null,"n":null'));
    expect(res.status, res.text).toBe(200);
    expect(JSON.parse(gw.mock.requests.at(-1)!.body)).toMatchObject({ max_tokens: null, max_completion_tokens: 1024 });
    await eventually('the call is settled', () => seen.committed.length, (n) => n === 1);
  });

  it.each([
    ['tokens', '"max_tokens":2000000000'],
    ['tokens', '"max_tokens":20000000,"n":128'],
    ['spend', '"max_completion_tokens":2000000000'],
  ] as const)('a valid budget past the %s limit (%s) is the 429 that says so', async (which, extra) => {
    const key = which === 'tokens' ? tokensKey : spendKey;
    const before = gw.mock.requests.length;
    const res = await post(key.key, chat(extra));
    expect(res.status, res.text).toBe(429);
    const error = expectErrorShape(res.json);
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.message).toMatch(/alone needs more than the limit/);
    expect(res.headers.get('retry-after')).toBeNull(); // waiting does not help
    expect(gw.mock.requests.length).toBe(before);
    expect(seen.refused).toBe(1);
    expect(seen.reserved).toEqual([]);
  });

  it('the largest valid budget at the highest price an admin can set is a 429 too, not an overflow', async () => {
    expect((await admin(gw, 'PUT', '/prices/priciest-model', { input: 1e6, output: 1e6 })).status).toBe(200);
    const before = gw.mock.requests.length;
    // 128 × 2,147,483,647 tokens at $1,000,000 per million: 2.7e17 micro-dollars, past 2^53.
    const res = await post(spendKey.key, chat('"max_tokens":2147483647,"n":128').replace('"gpt-4o-mini"', '"priciest-model"'));
    expect(res.status, res.text).toBe(429);
    expect(expectErrorShape(res.json).code).toBe('rate_limit_exceeded');
    expect(gw.mock.requests.length).toBe(before);
  });

  it('a key without token or spend limits has its numbers passed on for the upstream to judge', async () => {
    const body = chat('"max_tokens":1e300,"n":1e20');
    const res = await post(PROXY_KEY, body);
    expect(res.status, res.text).toBe(200);
    expect(gw.mock.requests.at(-1)!.body).toBe(body);
  });
});

describe('an upstream 2xx that reports absurd token counts', () => {
  const warnings = () => gw.logs.filter((line) => (JSON.parse(line) as { level: number }).level === 40);

  const cases: { what: string; usage: string; stream: boolean; prompt: (n: number) => boolean; completion: (n: number) => boolean; fields: string[] }[] = [
    { what: 'past 2^53 (JSON)', usage: '{"prompt_tokens":1e300,"completion_tokens":5,"total_tokens":1e300}', stream: false, prompt: (n) => n === MAX_COUNT, completion: (n) => n === 5, fields: ['prompt_tokens'] },
    {
      what: 'just past 2^53 and at 2^64 (JSON)',
      usage: '{"prompt_tokens":9007199254740993,"completion_tokens":18446744073709551616}',
      stream: false,
      prompt: (n) => n === MAX_COUNT,
      completion: (n) => n === MAX_COUNT,
      fields: ['prompt_tokens', 'completion_tokens'],
    },
    { what: 'negative and fractional (JSON)', usage: '{"prompt_tokens":-7,"completion_tokens":2.5}', stream: false, prompt: (n) => n === 0, completion: (n) => n === 2 || n === 3, fields: ['prompt_tokens', 'completion_tokens'] },
    {
      what: 'text (JSON)',
      usage: `{"prompt_tokens":"12","completion_tokens":"lots of ${UPSTREAM_KEY}","prompt_tokens_details":{"cached_tokens":"x"}}`,
      stream: false,
      prompt: (n) => n === 12,
      completion: (n) => n === 0,
      fields: ['prompt_tokens', 'completion_tokens', 'cached_tokens'],
    },
    { what: 'past 2^53 and negative (stream)', usage: '{"prompt_tokens":1e300,"completion_tokens":-1}', stream: true, prompt: (n) => n === MAX_COUNT, completion: (n) => n === 0, fields: ['prompt_tokens', 'completion_tokens'] },
  ];

  for (const c of cases) {
    it(`${c.what}: recorded clamped, logged, settled once`, async () => {
      const warned = warnings().length;
      const before = (await limitsOf(reporting)).tokens_per_hour!.used;
      const res = await post(reporting.key, chat('"seed":1', c.stream), { 'x-mock-usage-json': c.usage });
      expect(res.status, res.text).toBe(200);
      await eventually('the call is recorded', () => seen.records.length, (n) => n === 1);
      const record = seen.records[0]!;
      expect(c.prompt(record.promptTokens), `prompt ${record.promptTokens}`).toBe(true);
      expect(c.completion(record.completionTokens), `completion ${record.completionTokens}`).toBe(true);
      expect(record.estimated).toBe(false);
      expect(Number.isSafeInteger(record.costMicroUsd)).toBe(true);
      // One commit, of what was recorded; nothing released or left held.
      expect(seen.committed).toEqual(seen.reserved);
      expect(seen.reserved).toHaveLength(1);
      expect(seen.released).toEqual([]);
      const total = record.promptTokens + record.completionTokens;
      expect(Object.values(seen.actuals.get(seen.reserved[0]!)!)).toContain(total);
      expect((await limitsOf(reporting)).tokens_per_hour!.used).toBe(before + total);
      // A warning names the fields, and no line carries a secret (the text count held one).
      const added = warnings().slice(warned);
      expect(added.length).toBeGreaterThanOrEqual(1);
      for (const field of c.fields) expect(added.join('\n')).toContain(field);
      for (const secret of [UPSTREAM_KEY, reporting.key, ADMIN_KEY, PROXY_KEY]) expect(gw.logs.join('\n')).not.toContain(secret);
    });
  }
});
