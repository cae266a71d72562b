/**
 * A body that names a top-level member twice is refused before admission (400, param = the key):
 * JSON.parse keeps the last copy, other parsers the first, so the gateway's model allowlist and
 * budget could check one copy while an upstream acts on the other. Nothing is forwarded, reserved
 * or counted. Repeats below the top level (inside messages) are the client's business and pass.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, PROXY_KEY, type TestGateway } from '../helpers.js';
import { startAdminGateway } from '../keys/helpers.js';
import { expectErrorShape } from './bad-input-helpers.js';
import { watchLimiter, type LimiterWatch } from '../call/watch-limiter.js';

let gw: TestGateway;
let seen: LimiterWatch;

beforeAll(async () => {
  gw = await startAdminGateway({ PROXYGPT_ALLOWED_MODELS: 'gpt-4o-mini', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100' });
  seen = watchLimiter(gw);
});
afterAll(async () => {
  await gw?.close();
});
afterEach(() => seen.reset());

async function post(body: string) {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(PROXY_KEY), body });
  return { status: res.status, body: (await res.json()) as unknown };
}

describe('a top-level member named twice', () => {
  const cases: [string, string, string][] = [
    ['a forbidden model hidden before an allowed one', '{"model":"gpt-4o","model":"gpt-4o-mini","messages":[]}', 'model'],
    ['an allowed model before a forbidden one', '{"model":"gpt-4o-mini","messages":[],"model":"gpt-4o"}', 'model'],
    ['the second copy spelled with an escape', '{"model":"gpt-4o","mod\\u0065l":"gpt-4o-mini","messages":[]}', 'model'],
    ['a repeated budget', '{"model":"gpt-4o-mini","max_tokens":1,"messages":[],"max_tokens":100000}', 'max_tokens'],
    ['stream_options, once escaped, asking for usage only in the first copy', '{"model":"gpt-4o-mini","stream":true,"stream\\u005foptions":{"include_usage":true},"messages":[],"stream_options":{}}', 'stream_options'],
    ['a null completion cap sent twice', '{"max_completion_tokens":null,"model":"gpt-4o-mini","messages":[],"max_completion_tokens":null}', 'max_completion_tokens'],
    ['a repeated stream flag', '{"model":"gpt-4o-mini","stream":false,"messages":[],"stream":true}', 'stream'],
  ];
  for (const [what, body, key] of cases) {
    it(`${what}: 400 naming ${key}, nothing forwarded or counted`, async () => {
      const before = gw.mock.requests.length;
      const { status, body: answer } = await post(body);
      expect(status).toBe(400);
      const error = expectErrorShape(answer);
      expect(error.type).toBe('invalid_request_error');
      expect(error.param).toBe(key);
      expect(error.message).toContain(JSON.stringify(key));
      expect(gw.mock.requests.length).toBe(before);
      expect(seen.reserved).toEqual([]);
      expect(seen.refused).toBe(0);
    });
  }

  it('keys repeated inside messages are not top-level members: the call goes through', async () => {
    const before = gw.mock.requests.length;
    const body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}],"metadata":{"k":"1"}}';
    const { status } = await post(body);
    expect(status).toBe(200);
    expect(gw.mock.requests.length).toBe(before + 1);
    expect(gw.mock.requests.at(-1)!.body).toBe(body);
    expect(seen.reserved.length).toBe(1);
  });
});
