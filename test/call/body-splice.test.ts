/**
 * Issue 8, defect 8: the fields the gateway adds to a body (`stream_options.include_usage` for a
 * streamed chat completion, the completion cap of a key with token limits) are spliced into the
 * client's bytes; every other value arrives upstream exactly as the client wrote it (a 20-digit
 * `seed`, a long decimal, escapes), and the gateway's member is the only copy of its key. (A body
 * that repeats a top-level key is refused before this: test/routes/duplicate-keys.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, PROXY_KEY, type TestGateway } from '../helpers.js';
import { createKey, startAdminGateway, usageRows, type CreatedKey } from '../keys/helpers.js';

let gw: TestGateway;
let metered: CreatedKey;

beforeAll(async () => {
  gw = await startAdminGateway({ PROXYGPT_DEFAULT_MAX_TOKENS: '777' });
  metered = await createKey(gw, { name: 'metered', tokens_per_hour: 1_000_000 });
});
afterAll(async () => gw?.close());

/** Values JSON.parse + JSON.stringify would change: a 20-digit integer, a 21-digit decimal, escapes. */
const PRECISE = '"seed": 12345678901234567891, "temperature": 0.30000000000000000001, "user": "caf\\u00e9 \\/ \\ud83d\\ude00"';
const MESSAGES = '"messages": [{"role": "user", "content": "hi there"}]';

/** Sends `body` as it is; returns the bytes the upstream got and the client's answer text. */
async function send(key: string, body: string) {
  const before = gw.mock.requests.length;
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(key), body });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(gw.mock.requests.length).toBe(before + 1);
  return { upstream: gw.mock.requests.at(-1)!.body, answer: text };
}

/** The client's body up to (not including) its closing brace: what must arrive upstream unchanged. */
const beforeClosingBrace = (body: string) => body.slice(0, body.lastIndexOf('}'));

/** How many times `key` occurs as a key in the JSON text, spelled plainly or with \u escapes. */
function keyCount(json: string, key: string): number {
  const spelled = key
    .split('')
    .map((c) => `(?:${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}|\\\\u00${c.charCodeAt(0).toString(16)})`)
    .join('');
  return (json.match(new RegExp(`"${spelled}"\\s*:`, 'gi')) ?? []).length;
}

/** The usage-only chunk the gateway asked for must not reach a client that did not ask for it. */
function expectNoUsageChunk(answer: string): void {
  expect(answer).toContain('data: [DONE]');
  expect(answer).not.toContain('"usage"');
}

describe('a streamed chat completion asks for usage without re-encoding the body', () => {
  it('keeps a 20-digit seed, a long decimal and escapes byte for byte', async () => {
    const body = `{\n  "model": "gpt-4o-mini",\n  "stream": true,\n  ${MESSAGES},\n  ${PRECISE}\n}\n`;
    const { upstream, answer } = await send(PROXY_KEY, body);
    expect(upstream).toContain('"seed": 12345678901234567891');
    expect(upstream).toContain('"temperature": 0.30000000000000000001');
    expect(upstream).toContain('"user": "caf\\u00e9 \\/ \\ud83d\\ude00"');
    expect(upstream.startsWith(beforeClosingBrace(body))).toBe(true);
    expect(JSON.parse(upstream)).toEqual({ ...JSON.parse(body), stream_options: { include_usage: true } });
    expectNoUsageChunk(answer);
  });

  it("merges include_usage into the client's own stream_options, keeping its other options", async () => {
    const body = `{"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": false, "include_obfuscation": false}, ${MESSAGES}, ${PRECISE}}`;
    const { upstream, answer } = await send(PROXY_KEY, body);
    expect(upstream).toContain('"seed": 12345678901234567891');
    expect(JSON.parse(upstream).stream_options).toEqual({ include_obfuscation: false, include_usage: true });
    expect(keyCount(upstream, 'stream_options')).toBe(1);
    expect(keyCount(upstream, 'include_usage')).toBe(1);
    expectNoUsageChunk(answer);
  });

  it('replaces a stream_options that is not an object', async () => {
    const body = `{"model": "gpt-4o-mini", "stream": true, "stream_options": null, ${MESSAGES}, ${PRECISE}}`;
    const { upstream } = await send(PROXY_KEY, body);
    expect(keyCount(upstream, 'stream_options')).toBe(1);
    expect(JSON.parse(upstream).stream_options).toEqual({ include_usage: true });
    expect(upstream).toContain('"temperature": 0.30000000000000000001');
  });

  it('sends the body untouched when the client asked for usage itself', async () => {
    const body = `{"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, ${MESSAGES}, ${PRECISE}}`;
    const before = gw.mock.requests.length;
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body });
    expect(await res.text()).toContain('"usage"');
    expect(gw.mock.requests[before]!.body).toBe(body);
  });
});

describe("a key with token limits gets its completion cap without re-encoding the body", () => {
  it('adds the cap to a request that names none, keeping the seed', async () => {
    const body = `{"model": "gpt-4o-mini", ${MESSAGES}, ${PRECISE}}`;
    const { upstream } = await send(metered.key, body);
    expect(upstream.startsWith(beforeClosingBrace(body))).toBe(true);
    expect(JSON.parse(upstream)).toEqual({ ...JSON.parse(body), max_completion_tokens: 777 });
  });

  it('streams with both additions, and the stream is settled to the usage it reported', async () => {
    const body = `{"model": "gpt-4o-mini", "stream": true, ${MESSAGES}, ${PRECISE}}`;
    const before = (await usageRows(gw, metered.id, 0)).length;
    const { upstream, answer } = await send(metered.key, body);
    expect(JSON.parse(upstream)).toEqual({ ...JSON.parse(body), stream_options: { include_usage: true }, max_completion_tokens: 777 });
    expect(upstream).toContain('"seed": 12345678901234567891');
    expectNoUsageChunk(answer);
    const rows = await usageRows(gw, metered.id, before + 1);
    // The mock reports 10 prompt tokens and one completion token per chunk (3).
    expect(rows.at(-1)).toMatchObject({ prompt_tokens: 10, completion_tokens: 3, estimated: 0 });
  });
});
