/**
 * Issue 8, defect 2: JSON nested deeper than the gateway handles (100,000 levels in `messages`,
 * `metadata`, `stream_options` or `tools`) is refused with a 400 before admission: nothing is
 * reserved, counted, recorded or sent upstream, for environment keys and for stored keys with token
 * limits, in the `success` counting mode (where a call that failed after admission would hold its
 * slot). JSON up to 128 levels deep (serde_json's default limit) goes through. And a call whose
 * settling fails after admission does not keep its reservation held: it is released.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { authHeaders, PROXY_KEY, type TestGateway } from '../helpers.js';
import { createKey, eventually, rateLimit, startAdminGateway, type CreatedKey } from '../keys/helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { watchLimiter, type LimiterWatch } from './watch-limiter.js';

const SUCCESS_MODE = { PROXYGPT_RATE_LIMIT_COUNT: 'success', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '1000' };
const DEEP = 100_000;

let gw: TestGateway;
let metered: CreatedKey;
let seen: LimiterWatch;

beforeAll(async () => {
  gw = await startAdminGateway(SUCCESS_MODE);
  metered = await createKey(gw, { name: 'metered', tokens_per_hour: 1_000_000, usd_per_day: 100 });
  seen = watchLimiter(gw);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await gw?.close();
});
afterEach(() => seen.reset());

/** `depth` nested arrays, as JSON text: [[[...]]]. */
const arrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
/** `depth` nested objects, as JSON text: {"a":{"a":...{}}}. */
const objects = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

const MESSAGES = '[{"role":"user","content":"hi there"}]';
const streamed = (field: string, value: string) => `{"model":"gpt-4o-mini","stream":true,"messages":${field === 'messages' ? value : MESSAGES},${field === 'messages' ? '"seed":1' : `"${field}":${value}`}}`;

async function post(key: string, body: string) {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(key), body });
  const text = await res.text();
  return { status: res.status, body: (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as unknown };
}

/** Hourly requests the gateway counted (held ones included), and the key's tokens and spend. */
async function counted() {
  const global = (await rateLimit(gw, PROXY_KEY)).body as { hourly_api_usage: number };
  const own = (await rateLimit(gw, metered.key)).body.key!.limits;
  return { requests: global.hourly_api_usage, tokens: own.tokens_per_hour!.used, usd: own.usd_per_day!.used };
}

describe('JSON nested too deeply is refused before admission', () => {
  const cases: [string, string, string][] = [
    ['messages', 'arrays', arrays(DEEP)],
    ['metadata', 'objects', objects(DEEP)],
    ['stream_options', 'objects', objects(DEEP)],
    ['tools', 'arrays', arrays(DEEP)],
  ];
  for (const [field, shape, value] of cases) {
    for (const who of ['an environment key', 'a stored key with token and spend limits']) {
      it(`"stream": true with ${DEEP.toLocaleString('en')}-deep ${shape} in ${field}, from ${who}: 400, nothing counted`, async () => {
        const key = who === 'an environment key' ? PROXY_KEY : metered.key;
        const before = gw.mock.requests.length;
        const countedBefore = await counted();
        const { status, body } = await post(key, streamed(field, value));
        expect(status).toBe(400);
        const error = expectErrorShape(body);
        expect(error.type).toBe('invalid_request_error');
        expect(error.message).toMatch(/nest/i);
        expect(error.message).toContain('128');
        expect(gw.mock.requests.length).toBe(before);
        expect(seen.reserved).toEqual([]);
        expect(seen.refused).toBe(0);
        expect(seen.committed).toEqual([]);
        expect(await counted()).toEqual(countedBefore);
        // Give a (wrong) record a chance to be written: the answer is out, the close hook has run.
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(seen.records).toEqual([]);
      });
    }
  }

  it('128 levels (the whole body counted) go through; 129 are refused', async () => {
    // The body is level 1, metadata's value level 2: 127 nested objects make 128 levels.
    const ok = await post(metered.key, streamed('metadata', objects(127)));
    expect(ok.status).toBe(200);
    expect(gw.mock.requests.at(-1)!.body).toContain(objects(127));
    await eventually('the call is settled', () => seen.committed.length, (n) => n === 1);
    expect(seen.committed).toEqual(seen.reserved);

    const before = gw.mock.requests.length;
    const tooDeep = await post(metered.key, streamed('metadata', objects(128)));
    expect(tooDeep.status).toBe(400);
    expect(gw.mock.requests.length).toBe(before);
    expect(seen.reserved).toHaveLength(1);
  });

  it('brackets and quotes inside strings do not count as nesting', async () => {
    const text = JSON.stringify(`${'['.repeat(500)}"{{{\\"${'{'.repeat(500)}`);
    const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":${text}}]}`;
    const res = await post(PROXY_KEY, body);
    expect(res.status).toBe(200);
    expect(gw.mock.requests.at(-1)!.body).toBe(body);
  });
});

describe('a call admitted and then failing to settle', () => {
  it('has its reservation released instead of held until the hold expires', async () => {
    const countedBefore = await counted();
    seen.failCommits(1);
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(metered.key), body: streamed('metadata', '{}') });
    expect(res.status).toBe(200);
    await res.text();
    await eventually('the call is released', () => seen.released.length, (n) => n === 1);
    expect(seen.committed).toEqual(seen.reserved);
    expect(seen.released).toEqual(seen.reserved);
    // Nothing is held any more: the request slot and the key's tokens and spend are free again.
    expect(await counted()).toEqual(countedBefore);
    await eventually('the call is recorded', () => seen.records.length, (n) => n === 1);
  });
});
