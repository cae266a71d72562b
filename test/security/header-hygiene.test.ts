/**
 * Header hygiene through a real gateway, both directions. Upward: the client's credentials (its
 * Authorization, a proxy key sent as `api-key` / `x-api-key`), cookies, organisation and project,
 * proxy and forwarding headers and hop-by-hop headers never reach the upstream, which gets exactly
 * the gateway's upstream key; harmless headers do reach it. Downward: the upstream's cookies,
 * organisation and project, `alt-svc`, hop-by-hop headers and its own `x-ratelimit-*` never reach
 * the client, on JSON answers, SSE streams and error statuses alike; harmless headers pass.
 * Requests go over node:http (not fetch) so that any header, hop-by-hop ones included, can be sent
 * and every response header seen.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, OTHER_KEY, PROXY_KEY, startGateway, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import type { RecordedRequest } from '../fixtures/mock-openai.js';

let gw: TestGateway;
const agent = new http.Agent({ keepAlive: true });

beforeAll(async () => {
  gw = await startGateway({
    env: {
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, GET /v1/models',
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: '1000',
      LOG_LEVEL: 'warn',
    },
  });
});
afterAll(async () => {
  agent.destroy();
  await gw.close();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request over node:http with exactly these headers (names keep the case given here). */
function send(method: string, path: string, headers: OutgoingHttpHeaders, body?: string, useAgent: http.Agent | false = agent): Promise<Answer> {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: useAgent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else {
      // Written before end(): with no Content-Length given, node sends the body chunked.
      req.write(body);
      req.end();
    }
  });
}

/** The single request the upstream received while running `fn`. */
async function upstreamSees(fn: () => Promise<Answer>): Promise<{ answer: Answer; seen: RecordedRequest }> {
  gw.mock.reset();
  const answer = await fn();
  expect(answer.status, answer.body).toBe(200);
  expect(gw.mock.requests).toHaveLength(1);
  return { answer, seen: gw.mock.requests[0]! };
}

/** Client headers that must not go up (mixed case on purpose: names are case-insensitive). */
const PRIVATE_UP: OutgoingHttpHeaders = {
  Cookie: ['session=client-cookie-1', 'theme=client-cookie-2'],
  'OpenAI-Organization': 'org-client-private',
  'OpenAI-Project': 'proj_client_private',
  'Api-Key': PROXY_KEY,
  'X-Api-Key': OTHER_KEY,
  'Proxy-Authorization': 'Basic cHJveHktdXNlcjpwcm94eS1wYXNz',
  'Proxy-Authenticate': 'Basic realm="client"',
  'Proxy-Connection': 'keep-alive',
  'X-Forwarded-For': '203.0.113.7',
  'X-Forwarded-Host': 'forwarded-host.invalid',
  'X-Forwarded-Proto': 'gopher',
  Forwarded: 'for=203.0.113.8;proto=gopher',
  'X-Real-IP': '203.0.113.9',
  'Accept-Encoding': 'gzip, br',
  TE: 'trailers',
};
const PRIVATE_UP_NAMES = Object.keys(PRIVATE_UP).map((n) => n.toLowerCase());
const PRIVATE_UP_VALUES = ['client-cookie-1', 'client-cookie-2', 'org-client-private', 'proj_client_private', PROXY_KEY, OTHER_KEY, 'cHJveHkt', 'realm="client"', '203.0.113', 'forwarded-host.invalid', 'gopher'];

/** Client headers that must go up unchanged. */
const HARMLESS_UP: OutgoingHttpHeaders = {
  'User-Agent': 'header-hygiene-test/1.0',
  'X-Custom': 'custom value',
  'OpenAI-Beta': 'assistants=v2',
  'X-Multi': ['one', 'two'],
};

function expectCleanUpstream(seen: RecordedRequest): void {
  expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  for (const name of PRIVATE_UP_NAMES) expect(seen.headers, name).not.toHaveProperty(name);
  const all = JSON.stringify(seen.headers);
  for (const value of PRIVATE_UP_VALUES) expect(all, value).not.toContain(value);
  expect(seen.headers['user-agent']).toBe('header-hygiene-test/1.0');
  expect(seen.headers['x-custom']).toBe('custom value');
  expect(seen.headers['openai-beta']).toBe('assistants=v2');
  expect(seen.headers['x-multi']).toBe('one, two');
  // The upstream's own address, not the one the client called.
  expect(seen.headers.host).toBe(`127.0.0.1:${gw.mock.port}`);
}

describe('client headers going up', () => {
  it('JSON chat sent chunked, with hop-by-hop headers: only the upstream key and harmless headers go up', async () => {
    const { seen } = await upstreamSees(() =>
      send(
        'POST',
        '/v1/chat/completions',
        {
          Authorization: `Bearer ${PROXY_KEY}`,
          'Content-Type': 'application/json',
          'Transfer-Encoding': 'chunked',
          Trailer: 'x-client-trailer',
          Expect: '100-continue',
          'Keep-Alive': 'timeout=5, max=1000',
          Upgrade: 'client-upgrade/1',
          Host: 'client-side-host.invalid',
          ...PRIVATE_UP,
          ...HARMLESS_UP,
        },
        chatBody(),
      ),
    );
    expectCleanUpstream(seen);
    for (const name of ['transfer-encoding', 'trailer', 'expect', 'keep-alive', 'upgrade']) expect(seen.headers, name).not.toHaveProperty(name);
    for (const value of ['client-side-host', 'x-client-trailer', 'client-upgrade', 'max=1000']) expect(JSON.stringify(seen.headers)).not.toContain(value);
    expect(JSON.parse(seen.body)).toEqual(JSON.parse(chatBody()));
  });

  it('streamed chat: the body the gateway extends goes up with its own length, not the client one', async () => {
    const body = chatBody({ stream: true });
    const { answer, seen } = await upstreamSees(() =>
      send('POST', '/v1/chat/completions', { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...PRIVATE_UP, ...HARMLESS_UP }, body),
    );
    expect(answer.body).toContain('data: [DONE]');
    expectCleanUpstream(seen);
    // The gateway added stream_options, so the client's Content-Length is no longer the body's.
    expect(seen.bytes.length).toBeGreaterThan(Buffer.byteLength(body));
    expect(Number(seen.headers['content-length'])).toBe(seen.bytes.length);
  });

  it('GET /v1/models with Connection: close: the client connection options stay on the client side', async () => {
    const { answer, seen } = await upstreamSees(() =>
      send('GET', '/v1/models', { Authorization: `Bearer ${PROXY_KEY}`, Connection: 'close', ...PRIVATE_UP, ...HARMLESS_UP }, undefined, false),
    );
    expect(JSON.parse(answer.body)).toMatchObject({ object: 'list' });
    expectCleanUpstream(seen);
    // undici keeps its upstream connection open unless a forwarded `Connection: close` told it otherwise.
    expect(seen.headers.connection).toBe('keep-alive');
  });

  it('a proxy key sent only as api-key or x-api-key is no credential: 401, nothing goes up', async () => {
    gw.mock.reset();
    for (const name of ['api-key', 'x-api-key']) {
      const answer = await send('POST', '/v1/chat/completions', { [name]: PROXY_KEY, 'content-type': 'application/json' }, chatBody());
      expect(answer.status, name).toBe(401);
      expect(answer.body).not.toContain(PROXY_KEY);
    }
    expect(gw.mock.requests).toHaveLength(0);
  });
});

/** Upstream headers that must not come down (the mock adds them on request). */
const PRIVATE_DOWN: Record<string, string | string[]> = {
  'set-cookie': ['upstream_session=upstream-cookie-1; Path=/', '__cf_bm=upstream-cookie-2; HttpOnly'],
  'openai-organization': 'org-upstream-private',
  'openai-project': 'proj_upstream_private',
  'alt-svc': 'h3=":443"; ma=86400',
  'keep-alive': 'timeout=987, max=654',
  'proxy-connection': 'upstream-proxy-connection',
  te: 'upstream-te',
  upgrade: 'upstream-upgrade/1',
  connection: 'close',
  'x-ratelimit-limit-requests': '999999',
  'x-ratelimit-remaining-requests': '999998',
  'x-ratelimit-reset-requests': '77s',
  'x-ratelimit-limit-tokens': '888888',
  'x-ratelimit-remaining-tokens': '888887',
  'x-ratelimit-reset-tokens': '66s',
  'x-ratelimit-upstream-extra': 'upstream-ratelimit-extra',
};
/** Names whose values must come from the gateway, never from the upstream. */
const GATEWAY_OWN = new Set(['connection', 'keep-alive', 'x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests']);
/** Distinctive values that must not come down under any name. */
const PRIVATE_DOWN_VALUES = ['upstream-cookie', 'org-upstream-private', 'proj_upstream_private', 'h3=":443"', 'upstream-proxy-connection', 'upstream-te', 'upstream-upgrade', 'upstream-ratelimit-extra'];
const HARMLESS_DOWN = { 'openai-processing-ms': '123', 'openai-version': '2020-10-01', 'x-upstream-note': 'kept as is' };

function mockHeaders(extra: Record<string, string | string[]> = {}): Record<string, string> {
  return { 'x-mock-response-headers': JSON.stringify({ ...PRIVATE_DOWN, ...HARMLESS_DOWN, ...extra }) };
}

function expectCleanClient(answer: Answer, contentType: string): void {
  for (const [name, value] of Object.entries(PRIVATE_DOWN)) {
    if (GATEWAY_OWN.has(name)) expect(answer.headers[name], name).not.toEqual(value);
    else expect(answer.headers, name).not.toHaveProperty(name);
  }
  const rawHeaders = JSON.stringify(answer.headers);
  for (const value of PRIVATE_DOWN_VALUES) expect(rawHeaders, value).not.toContain(value);
  // The gateway's own limit (PROXYGPT_HOURLY_RATE_LIMIT) replaces the upstream's figures.
  expect(answer.headers['x-ratelimit-limit-requests']).toBe('1000');
  expect(answer.headers['x-proxygpt-request-id']).toBeTruthy();
  expect(answer.headers['x-request-id']).toBe('req_mock');
  expect(answer.headers['openai-processing-ms']).toBe('123');
  expect(answer.headers['openai-version']).toBe('2020-10-01');
  expect(answer.headers['x-upstream-note']).toBe('kept as is');
  expect(answer.headers['content-type']).toContain(contentType);
}

const auth = { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' };

describe('upstream headers coming down', () => {
  it('on a 2xx JSON answer', async () => {
    const answer = await send('POST', '/v1/chat/completions', { ...auth, ...mockHeaders() }, chatBody());
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).choices[0].message.content).toBe('Echo: hi there');
    expectCleanClient(answer, 'application/json');
  });

  it('on GET /v1/models', async () => {
    const answer = await send('GET', '/v1/models', { authorization: `Bearer ${PROXY_KEY}`, ...mockHeaders() });
    expect(answer.status).toBe(200);
    expectCleanClient(answer, 'application/json');
  });

  it('on an SSE stream (with a Trailer declaration too)', async () => {
    const answer = await send('POST', '/v1/chat/completions', { ...auth, ...mockHeaders({ trailer: 'x-upstream-trailer' }) }, chatBody({ stream: true }));
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('data: [DONE]');
    expectCleanClient(answer, 'text/event-stream');
    expect(answer.headers).not.toHaveProperty('trailer');
  });

  it.each([400, 401, 429, 500, 503])('on an upstream %i error', async (status) => {
    const answer = await send('POST', '/v1/chat/completions', { ...auth, 'x-mock-status': String(status), ...mockHeaders() }, chatBody());
    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { message: `mock error ${status}` } });
    expectCleanClient(answer, 'application/json');
  });
});
