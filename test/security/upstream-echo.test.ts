/**
 * An upstream (or a proxy in front of it) that echoes what it received must not hand our secrets
 * to clients: the Authorization it got (the upstream key) echoed in response headers, on 2xx and
 * on errors; and any configured secret (upstream key, proxy keys, admin key) echoed in 2xx bodies
 * (whole JSON, a chunked JSON answer through the tap, a JSON answer over 1 MiB with its length, an
 * SSE stream, the legacy route) and error bodies, also when the upstream's write cuts the secret
 * in two, whatever INSECURE_DEBUG says. Only the configured secrets are removed from 2xx bodies:
 * text that merely looks like a key (`sk-…`, `Bearer …`) is a model's to write and passes intact.
 * The upstream key here matches none of the Redactor's token patterns, so only its configured
 * value can protect it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { dataOf } from '../../src/metering/sse-tap.js';
import { OTHER_KEY, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';

const PLAIN_UPSTREAM_KEY = 'upstream-plain-secret-value-4242';
const ADMIN = 'admin-plain-secret-value-9090';
const SECRETS = [PLAIN_UPSTREAM_KEY, PROXY_KEY, OTHER_KEY, ADMIN];

/** Headers that echo the Authorization the mock received (`$authorization`, filled in by the mock). */
const ECHO_HEADERS = JSON.stringify({
  'x-echo-authorization': '$authorization',
  'www-authenticate': 'Bearer realm="upstream", error="invalid_token", token="$authorization"',
  'x-echo-list': ['$authorization', 'plain'],
});

interface Seen {
  status: number;
  headers: [string, string][];
  body: string;
}

async function chat(gw: TestGateway, headers: Record<string, string>, body: Record<string, unknown> = {}, path = '/v1/chat/completions'): Promise<Seen> {
  const res = await fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi there' }], ...body }),
  });
  return { status: res.status, headers: [...res.headers], body: await res.text() };
}

function expectNoSecret(what: string, seen: Seen): void {
  const visible = `${JSON.stringify(seen.headers)}\n${seen.body}`;
  for (const secret of SECRETS) expect(visible.includes(secret), `${what} shows ${secret.slice(0, 12)}…`).toBe(false);
}

const headerOf = (seen: Seen, name: string) => seen.headers.find(([n]) => n === name)?.[1];

/** The assistant text of an SSE chat stream (its content deltas joined). */
function streamedText(sse: string): string {
  return sse
    .split('\n\n')
    .map((event) => dataOf(event))
    .filter((data): data is string => data !== null && data !== '[DONE]')
    .map((data) => (JSON.parse(data) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? '')
    .join('');
}

describe.each([
  ['INSECURE_DEBUG off', 'false'],
  ['INSECURE_DEBUG on', 'true'],
])('secrets an upstream echoes back (%s)', (_name, insecureDebug) => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({
      env: { OPENAI_API_KEY: PLAIN_UPSTREAM_KEY, PROXYGPT_ADMIN_KEY: ADMIN, INSECURE_DEBUG: insecureDebug, LOG_LEVEL: 'warn', PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions' },
    });
  });
  afterAll(async () => gw?.close());

  describe('in response headers', () => {
    it.each([
      ['a 2xx JSON answer', {}, {}, 200],
      ['a chunked 2xx JSON answer (the tap)', { 'x-mock-chunked': '1' }, {}, 200],
      ['an SSE stream', {}, { stream: true }, 200],
      ['a 401 from the upstream', { 'x-mock-status': '401' }, {}, 401],
      ['a 500 from the upstream', { 'x-mock-status': '500' }, {}, 500],
    ])('%s: the echoed key is redacted, the headers stay', async (_what, headers, body, status) => {
      const seen = await chat(gw, { 'x-mock-response-headers': ECHO_HEADERS, ...headers }, body);
      expect(seen.status).toBe(status);
      // The upstream really echoed the key it received.
      expect(gw.mock.requests.at(-1)!.headers.authorization).toBe(`Bearer ${PLAIN_UPSTREAM_KEY}`);
      expectNoSecret('the response', seen);
      expect(headerOf(seen, 'x-echo-authorization')).toBe('Bearer [REDACTED]');
      expect(headerOf(seen, 'www-authenticate')).toBe('Bearer realm="upstream", error="invalid_token", token="Bearer [REDACTED]"');
      expect(headerOf(seen, 'x-echo-list')).toBe('Bearer [REDACTED], plain');
    });
  });

  describe('in 2xx bodies', () => {
    it('a whole JSON answer: redacted, still JSON, with its right length', async () => {
      const seen = await chat(gw, { 'x-mock-echo': 'key: $authorization, admin: ' + ADMIN });
      expect(seen.status).toBe(200);
      expectNoSecret('the body', seen);
      const content = (JSON.parse(seen.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
      expect(content).toBe('Echo: hi there key: Bearer [REDACTED], admin: [REDACTED]');
      expect(Number(headerOf(seen, 'content-length'))).toBe(Buffer.byteLength(seen.body));
    });

    // Cut before, at every few bytes inside and right after "Bearer <key>" (39 bytes).
    const cuts = [0, 1, 6, 7, 8, 15, 20, 30, 37, 38, 39];

    it.each(cuts)('a chunked JSON answer (the tap), the upstream key cut %i bytes into "Bearer <key>"', async (cut) => {
      const seen = await chat(gw, { 'x-mock-echo': '$authorization', 'x-mock-chunked': '1', 'x-mock-split-at': String(cut) });
      expect(seen.status).toBe(200);
      expect(headerOf(seen, 'content-length')).toBeUndefined(); // it went through the tap, not read whole
      expectNoSecret('the body', seen);
      const content = (JSON.parse(seen.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
      expect(content).toMatch(/^Echo: hi there Bearer \S+$/);
      expect(content.length).toBe('Echo: hi there Bearer '.length + PLAIN_UPSTREAM_KEY.length);
    });

    it.each([1, 20, 36])('a JSON answer over 1 MiB (the tap, with its Content-Length), a proxy key cut %i bytes in', async (cut) => {
      const seen = await chat(gw, { 'x-mock-echo': `Bearer ${PROXY_KEY}`, 'x-mock-split-at': String(cut) }, { messages: [{ role: 'user', content: 'word '.repeat(230_000) }] });
      expect(seen.status).toBe(200);
      expect(Number(headerOf(seen, 'content-length'))).toBeGreaterThan(1024 * 1024);
      expect(Buffer.byteLength(seen.body)).toBe(Number(headerOf(seen, 'content-length')));
      expectNoSecret('the body', seen);
      const content = (JSON.parse(seen.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
      expect(content.endsWith(' Bearer ' + '*'.repeat(PROXY_KEY.length))).toBe(true);
    });

    it.each(cuts)('an SSE stream, the upstream key cut %i bytes into "Bearer <key>"', async (cut) => {
      const seen = await chat(gw, { 'x-mock-echo': '$authorization', 'x-mock-split-at': String(cut) }, { stream: true });
      expect(seen.status).toBe(200);
      expectNoSecret('the stream', seen);
      expect(streamedText(seen.body)).toBe('Bearer [REDACTED]Echo: hi there ');
      expect(seen.body.endsWith('data: [DONE]\n\n')).toBe(true);
    });

    it('the legacy route: the assistant text is redacted', async () => {
      // The legacy route sends upstream headers of its own (no x-mock-*): the mock echoes the message.
      const res = await fetch(`${gw.url}/api/openai/completions/gpt3`, {
        method: 'POST',
        headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify([{ role: 'user', content: `old ${OTHER_KEY} and ${ADMIN}` }]),
      });
      const seen: Seen = { status: res.status, headers: [...res.headers], body: await res.text() };
      expect(seen.status).toBe(200);
      expectNoSecret('the legacy answer', seen);
      expect(JSON.parse(seen.body)).toEqual({ message: 'Echo: old [REDACTED] and [REDACTED]' });
    });

    it('text that only looks like a key is not ours: it passes intact', async () => {
      const lookalike = 'sk-proj-notakeyofours0123456789 and Bearer abcdefghij and pgpt-someone-elses-key-000';
      const json = await chat(gw, { 'x-mock-echo': lookalike });
      expect((JSON.parse(json.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe(`Echo: hi there ${lookalike}`);
      const sse = await chat(gw, { 'x-mock-echo': lookalike }, { stream: true });
      expect(streamedText(sse.body)).toBe(`${lookalike}Echo: hi there `);
    });
  });

  describe('in error bodies', () => {
    it.each([1, 20, 40])('the echoed key cut %i bytes in is redacted', async (cut) => {
      const seen = await chat(gw, { 'x-mock-status': '400', 'x-mock-echo': '$authorization', 'x-mock-split-at': String(cut) });
      expect(seen.status).toBe(400);
      expectNoSecret('the error', seen);
      expect((JSON.parse(seen.body) as { error: { message: string } }).error.message).toBe('mock error 400: Bearer [REDACTED]');
    });
  });
});
