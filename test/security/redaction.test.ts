/**
 * Secrets never leave the gateway: the upstream key and the proxy keys appear in no response (status
 * line, header or body) and in no log line, whatever happens — normal calls, streams, upstream
 * errors, unreachable or slow upstreams, internal failures — with INSECURE_DEBUG off and on. Also
 * unit tests of the Redactor and the logger it feeds.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { authHeaders, chatBody, OTHER_KEY, PROXY_KEY, startGateway, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import { Redactor } from '../../src/redact.js';
import { createLogger } from '../../src/log.js';
import { upstreamUnreachable } from '../../src/errors.js';
import { freePort } from '../support/server-process.js';

const SECRETS = [UPSTREAM_KEY, PROXY_KEY, OTHER_KEY];
/** Secrets that match none of the Redactor's token patterns: only their configured value protects them. */
const PLAIN_UPSTREAM_KEY = 'upstream-plain-secret-value-42';
const PLAIN_PROXY_KEY = 'plain-proxy-secret-value-77';

/** The gateway's request ids: a random per-process hex prefix and a base-36 counter. */
const REQUEST_ID = /^[0-9a-f]{12}-[0-9a-z]+$/;

function expectNoSecrets(what: string, text: string, secrets: string[] = SECRETS): void {
  for (const secret of secrets) {
    expect(text.includes(secret), `${what} contains the secret ${secret.slice(0, 8)}…`).toBe(false);
  }
}

interface Captured {
  status: number;
  headers: Headers;
  body: string;
}

/** Everything a client can see of a response, as one string. */
const visible = (r: Captured) => `${r.status}\n${JSON.stringify([...r.headers])}\n${r.body}`;

async function call(url: string, init: RequestInit = {}): Promise<Captured> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Waits (bounded) until a log line matching `pattern` was written. */
async function waitForLog(gw: TestGateway, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const line = gw.logs.find((l) => pattern.test(l));
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no log line matches ${pattern}; logs:\n${gw.logs.join('')}`);
}

/** A port nothing listens on (one that was free a moment ago). */
const closedPort = freePort;

/** The scenarios every gateway mode goes through; returns what the client saw. */
async function exercise(gw: TestGateway): Promise<Captured[]> {
  const v1 = `${gw.url}/v1/chat/completions`;
  const seen: Captured[] = [];
  seen.push(await call(v1, { method: 'POST', headers: authHeaders(), body: chatBody() }));
  expect(seen.at(-1)!.status).toBe(200);
  seen.push(await call(v1, { method: 'POST', headers: { ...authHeaders(OTHER_KEY), 'x-mock-chunks': '4' }, body: chatBody({ stream: true }) }));
  expect(seen.at(-1)!.status).toBe(200);
  expect(seen.at(-1)!.body).toContain('data: [DONE]');
  for (const status of ['400', '401', '429', '500', '503']) {
    seen.push(await call(v1, { method: 'POST', headers: { ...authHeaders(), 'x-mock-status': status }, body: chatBody() }));
    expect(seen.at(-1)!.status).toBe(Number(status));
  }
  seen.push(await call(`${gw.url}/api/openai/completions/gpt3`, { method: 'POST', headers: authHeaders(), body: '[{"role":"user","content":"hi"}]' }));
  expect(seen.at(-1)!.status).toBe(200);
  seen.push(await call(`${gw.url}/ratelimit`, { headers: authHeaders() }));
  seen.push(await call(v1, { method: 'POST', headers: authHeaders('pgpt-wrong-key-0000000000000000'), body: chatBody() }));
  seen.push(await call(`${gw.url}/v1/models`, { headers: authHeaders() }));
  seen.push(await call(`${gw.url}/nothing-here`, { headers: authHeaders() }));
  // A client that pastes a key into a broken body must not get it echoed back in the error.
  seen.push(await call(v1, { method: 'POST', headers: authHeaders(), body: `${PROXY_KEY} ${UPSTREAM_KEY}` }));
  expect(seen.at(-1)!.status).toBe(400);
  seen.push(await call(v1, { method: 'POST', headers: authHeaders(), body: `{"model": "${PROXY_KEY}` }));
  expect(seen.at(-1)!.status).toBe(400);
  seen.push(await call(`${gw.url}/openapi.json`));
  return seen;
}

describe.each([
  ['INSECURE_DEBUG off', 'false'],
  ['INSECURE_DEBUG on', 'true'],
])('no secret leaks (%s)', (_name, insecureDebug) => {
  let gw: TestGateway;
  const debug = insecureDebug === 'true';

  beforeAll(async () => {
    gw = await startGateway({
      env: { INSECURE_DEBUG: insecureDebug, LOG_LEVEL: 'trace', PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions' },
    });
  });
  afterAll(async () => gw.close());
  afterEach(() => vi.restoreAllMocks());

  it('across normal calls, streams, upstream errors, bad input and docs', async () => {
    const seen = await exercise(gw);
    for (const r of seen) expectNoSecrets(`response ${r.status}`, visible(r));
    // The keys were really in flight: the upstream got the real key.
    expect(gw.mock.requests.some((r) => r.headers.authorization === `Bearer ${UPSTREAM_KEY}`)).toBe(true);
    // The logs were really written (so their check below means something).
    await waitForLog(gw, /"path":"\/api\/openai\/completions\/gpt3"/);
    expect(gw.logs.filter((l) => l.includes('"msg":"proxied"')).length).toBeGreaterThanOrEqual(8);
    expectNoSecrets('the log', gw.logs.join(''));
  });

  it('in a 500 from an unexpected failure: generic message with a request id, or redacted details', async () => {
    vi.spyOn(gw.app.upstreamPool, 'send').mockRejectedValueOnce(
      new Error(`socket to upstream with Bearer ${UPSTREAM_KEY} failed for client ${PROXY_KEY} and ${OTHER_KEY}`),
    );
    const r = await call(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
    expect(r.status).toBe(500);
    expectNoSecrets('500 response', visible(r));
    const error = (JSON.parse(r.body) as { error: { message: string; type: string; code: string } }).error;
    expect(error.type).toBe('server_error');
    const requestId = r.headers.get('x-proxygpt-request-id')!;
    expect(requestId).toMatch(REQUEST_ID);
    expect(error.message).toContain(requestId);
    if (debug) {
      expect(error.message).toContain('socket to upstream');
      expect(error.message).toContain('[REDACTED]');
    } else {
      expect(error.message).not.toContain('socket to upstream');
      expect(error.message).not.toContain('[REDACTED]');
    }
    // The failure is logged with its details, redacted.
    const line = await waitForLog(gw, new RegExp(`"reqId":"${requestId}".*request failed`));
    expect(line).toContain('socket to upstream');
    expect(line).toContain('[REDACTED]');
    expect(JSON.parse(line)).toMatchObject({ err: { type: 'Error' }, status: 500 });
    expectNoSecrets('the log', gw.logs.join(''));
  });

  it('in a 502 whose cause mentions a secret: details only with INSECURE_DEBUG, redacted', async () => {
    const cause = new Error(`connect refused while sending ${UPSTREAM_KEY}`);
    vi.spyOn(gw.app.upstreamPool, 'send').mockRejectedValueOnce(
      upstreamUnreachable(cause),
    );
    const r = await call(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
    expect(r.status).toBe(502);
    expectNoSecrets('502 response', visible(r));
    const message = (JSON.parse(r.body) as { error: { message: string } }).error.message;
    if (debug) expect(message).toContain('connect refused while sending [REDACTED]');
    else expect(message).toBe('The upstream API could not be reached.');
    expectNoSecrets('the log', gw.logs.join(''));
  });

  it('redacts configured secrets that look like no token (by value, not by pattern)', async () => {
    const plain = await startGateway({
      mock: gw.mock,
      env: { INSECURE_DEBUG: insecureDebug, OPENAI_API_KEY: PLAIN_UPSTREAM_KEY, PROXYGPT_API_KEYS: PLAIN_PROXY_KEY },
    });
    try {
      vi.spyOn(plain.app.upstreamPool, 'send').mockRejectedValueOnce(new Error(`keys ${PLAIN_UPSTREAM_KEY} / ${PLAIN_PROXY_KEY} in a message`));
      const r = await call(`${plain.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(PLAIN_PROXY_KEY), body: chatBody() });
      expect(r.status).toBe(500);
      expectNoSecrets('500 response', visible(r), [PLAIN_UPSTREAM_KEY, PLAIN_PROXY_KEY]);
      if (debug) expect(r.body).toContain('keys [REDACTED] / [REDACTED] in a message');
      const ok = await call(`${plain.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(PLAIN_PROXY_KEY), body: chatBody() });
      expect(ok.status).toBe(200);
      await waitForLog(plain, /"msg":"proxied"/);
      await waitForLog(plain, /request failed/);
      expectNoSecrets('the log', plain.logs.join(''), [PLAIN_UPSTREAM_KEY, PLAIN_PROXY_KEY]);
    } finally {
      await plain.close();
    }
  });
});

describe.each([
  ['INSECURE_DEBUG off', 'false'],
  ['INSECURE_DEBUG on', 'true'],
])('no secret leaks when the upstream fails (%s)', (_name, insecureDebug) => {
  it('502: the upstream port is closed', async () => {
    const gw = await startGateway({ env: { INSECURE_DEBUG: insecureDebug, OPENAI_BASE_URL: `http://127.0.0.1:${await closedPort()}/v1` } });
    try {
      const results = [
        await call(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() }),
        await call(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody({ stream: true }) }),
        await call(`${gw.url}/api/openai/completions/gpt3`, { method: 'POST', headers: authHeaders(OTHER_KEY), body: '[{"role":"user","content":"x"}]' }),
      ];
      for (const r of results) {
        expect(r.status).toBe(502);
        expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'upstream_unreachable' } });
        expectNoSecrets('502 response', visible(r));
        if (insecureDebug === 'true') expect(r.body).toContain('ECONNREFUSED');
        else expect(r.body).not.toContain('ECONNREFUSED');
      }
      await waitForLog(gw, /"status":502/);
      expectNoSecrets('the log', gw.logs.join(''));
    } finally {
      await gw.close();
    }
  });

  it('504: the upstream does not answer in time', async () => {
    const gw = await startGateway({ env: { INSECURE_DEBUG: insecureDebug, PROXYGPT_UPSTREAM_TIMEOUT_MS: '300' } });
    try {
      const r = await call(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...authHeaders(), 'x-mock-delay-ms': '5000' },
        body: chatBody(),
      });
      expect(r.status).toBe(504);
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'upstream_timeout' } });
      expectNoSecrets('504 response', visible(r));
      await waitForLog(gw, /"status":504/);
      expectNoSecrets('the log', gw.logs.join(''));
    } finally {
      await gw.close();
    }
  });
});

describe('an upstream that echoes the key it received', () => {
  let upstream: Server;
  let gw: TestGateway;
  beforeAll(async () => {
    // A badly behaved upstream: puts the Authorization it got into its error body.
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${req.headers.authorization}`, type: 'invalid_request_error', code: 'invalid_api_key', param: null } });
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    gw = await startGateway({ env: { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` } });
  });
  afterAll(async () => {
    await gw.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('the legacy route passes the error status through with the key redacted', async () => {
    const r = await call(`${gw.url}/api/openai/completions/gpt3`, { method: 'POST', headers: authHeaders(), body: '[{"role":"user","content":"hi"}]' });
    expect(r.status).toBe(401);
    expectNoSecrets('legacy 401', visible(r));
    expect(JSON.parse(r.body)).toMatchObject({ error: { message: 'Incorrect API key provided: Bearer [REDACTED]', code: 'invalid_api_key' } });
  });

  // Upstream error bodies are read whole and redacted before they reach the client.
  it('the /v1 pass-through passes the error status through with the key redacted', async () => {
    const r = await call(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
    expect(r.status).toBe(401);
    expectNoSecrets('v1 401', visible(r));
  });
});

describe('Redactor', () => {
  const redactor = new Redactor([UPSTREAM_KEY, PROXY_KEY, 'abc123secret', 'abc123secret-longer', '', null, undefined]);

  it('replaces every occurrence of every configured secret', () => {
    expect(redactor.text(`a ${UPSTREAM_KEY} b ${PROXY_KEY} c ${UPSTREAM_KEY}`)).toBe('a [REDACTED] b [REDACTED] c [REDACTED]');
    expect(redactor.text('x abc123secret y')).toBe('x [REDACTED] y');
  });

  it('removes a secret that contains another one whole (longest first)', () => {
    expect(redactor.text('k=abc123secret-longer;')).toBe('k=[REDACTED];');
  });

  it('removes bearer tokens and key-shaped strings it was not told about', () => {
    expect(redactor.text('Authorization: Bearer some.unknown_token-123')).toBe('Authorization: Bearer [REDACTED]');
    expect(redactor.text('authorization: bearer xyz')).toBe('authorization: Bearer [REDACTED]');
    expect(redactor.text('key sk-proj-AbCdEf123456 leaked')).toBe('key [REDACTED] leaked');
    expect(redactor.text('key pgpt-other-instance-key leaked')).toBe('key [REDACTED] leaked');
  });

  it('leaves ordinary text alone (ignores empty secrets)', () => {
    const text = 'The upstream API could not be reached: connect ECONNREFUSED 127.0.0.1:1 (task-skipped)';
    expect(redactor.text(text)).toBe(text);
  });

  it('redacts every string of nested values without changing the input', () => {
    const input = { a: [PROXY_KEY, { b: `x ${UPSTREAM_KEY}` }], n: 1, t: true, z: null, headers: { authorization: `Bearer ${PROXY_KEY}` } };
    const copy = JSON.parse(JSON.stringify(input)) as unknown;
    const out = JSON.stringify(redactor.value(input));
    expectNoSecrets('redacted value', out);
    // A credential's property is censored whole, whatever its scheme.
    expect(JSON.parse(out)).toEqual({ a: ['[REDACTED]', { b: 'x [REDACTED]' }], n: 1, t: true, z: null, headers: { authorization: '[REDACTED]' } });
    expect(input).toEqual(copy);
  });

  it('redacts errors: message, stack, code and cause', () => {
    const err = Object.assign(new TypeError(`failed with ${UPSTREAM_KEY}`, { cause: new Error(`because of ${PROXY_KEY}`) }), { code: `E_${PROXY_KEY}` });
    const out = redactor.value(err) as { type: string; message: string; stack: string; code: string; cause: { message: string } };
    expect(out.type).toBe('TypeError');
    expect(out.message).toBe('failed with [REDACTED]');
    expect(out.stack).toContain('failed with [REDACTED]');
    expect(out.cause.message).toBe('because of [REDACTED]');
    expect(out.code).toBe('E_[REDACTED]');
    expectNoSecrets('redacted error', JSON.stringify(out));
  });

  it('never passes deeply nested values on unredacted', () => {
    let deep: unknown = { secret: UPSTREAM_KEY };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expectNoSecrets('deep value', JSON.stringify(redactor.value(deep)));
  });

  it('copes with cycles', () => {
    const a: Record<string, unknown> = { key: PROXY_KEY };
    a.self = a;
    expectNoSecrets('cyclic value', JSON.stringify(redactor.value(a)));
  });
});

describe('logger', () => {
  function capture() {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger('trace', new Redactor([UPSTREAM_KEY, PROXY_KEY, PLAIN_PROXY_KEY]), destination);
    return { logger, lines };
  }

  it('redacts secrets in messages, format arguments, objects, errors and child bindings', () => {
    const { logger, lines } = capture();
    logger.info(`message with ${UPSTREAM_KEY}`);
    logger.info('format %s and %s', PROXY_KEY, PLAIN_PROXY_KEY);
    logger.warn({ deep: { list: [PLAIN_PROXY_KEY] }, headers: { authorization: 'Basic dXNlcjpwYXNz' } }, 'object');
    logger.error(new Error(`error with ${UPSTREAM_KEY}`));
    logger.error({ err: new TypeError(`err with ${PLAIN_PROXY_KEY}`) }, 'wrapped');
    logger.child({ bound: PLAIN_PROXY_KEY }).info('from a child');
    logger.child({ reqId: 'r1' }).child({ nested: `Bearer ${PROXY_KEY}` }).info('from a grandchild');
    expect(lines).toHaveLength(7);
    const all = lines.join('');
    expectNoSecrets('the log', all, [UPSTREAM_KEY, PROXY_KEY, PLAIN_PROXY_KEY, 'dXNlcjpwYXNz']);
    expect(all.match(/\[REDACTED\]/g)!.length).toBeGreaterThanOrEqual(9);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]!.msg).toBe('message with [REDACTED]');
    expect(parsed[1]!.msg).toBe('format [REDACTED] and [REDACTED]');
    expect(parsed[3]).toMatchObject({ type: 'Error', message: 'error with [REDACTED]' });
    expect(parsed[4]!.err).toMatchObject({ type: 'TypeError', message: 'err with [REDACTED]' });
    expect(parsed[5]!.bound).toBe('[REDACTED]');
    expect(parsed[6]).toMatchObject({ reqId: 'r1', nested: 'Bearer [REDACTED]' });
  });

  it('censors credentials by property name at any depth, whatever they hold', () => {
    const { logger, lines } = capture();
    logger.info({ config: { apiKey: 'an-unknown-key-value', nested: { openaiApiKey: 'another-unknown-value' } } }, 'config');
    logger.info({ req: { headers: { Authorization: 'Digest username="u", response="abc123"', Cookie: 'session=s3cr3t', accept: 'text/plain' } } }, 'headers');
    const all = lines.join('');
    expectNoSecrets('the log', all, ['an-unknown-key-value', 'another-unknown-value', 'abc123', 's3cr3t']);
    expect(JSON.parse(lines[1]!)).toMatchObject({ req: { headers: { Authorization: '[REDACTED]', Cookie: '[REDACTED]', accept: 'text/plain' } } });
    expect(JSON.parse(lines[0]!)).toMatchObject({ config: { apiKey: '[REDACTED]', nested: { openaiApiKey: '[REDACTED]' } } });
  });

  it('logs exotic errors (DOMException, errors with getters) without throwing', () => {
    const { logger, lines } = capture();
    const abort = new DOMException(`aborted ${PROXY_KEY}`, 'AbortError');
    logger.warn({ err: abort }, 'aborted');
    logger.warn(AbortSignal.abort().reason as Error);
    expect(lines).toHaveLength(2);
    expectNoSecrets('the log', lines.join(''));
    expect(JSON.parse(lines[0]!)).toMatchObject({ err: { type: 'DOMException', message: 'aborted [REDACTED]' } });
  });

  it('respects the level', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = createLogger('warn', new Redactor([]), destination);
    logger.info('hidden');
    logger.warn('shown');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('shown');
  });
});
