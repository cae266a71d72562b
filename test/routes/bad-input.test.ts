/**
 * Bad input: every malformed, unauthorised or disallowed request gets a 4xx answer in OpenAI's error
 * shape, nothing reaches the upstream, and the gateway keeps serving (checked after every test).
 * Paths that fetch() would normalise are sent as raw bytes over a socket.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { request as httpRequest } from 'node:http';
import Fastify from 'fastify';
import type { Socket } from 'node:net';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { clientErrorHandler, frameworkErrorHandler } from '../../src/http/error-handler.js';
import { Redactor } from '../../src/redact.js';

let gw: TestGateway;
let port: number;

const MAX_BODY = 1024;

beforeAll(async () => {
  gw = await startGateway({
    env: {
      PROXYGPT_MAX_BODY_BYTES: String(MAX_BODY),
      PROXYGPT_ALLOWED_MODELS: 'gpt-4o*',
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings',
    },
  });
  port = Number(new URL(gw.url).port);
});
afterAll(async () => gw.close());

// The gateway must survive every bad request: a normal call succeeds after each test.
afterEach(async () => {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('Echo: hi there');
});

interface RawResponse {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  body: string;
}

/** Sends raw bytes over a fresh TCP connection and parses the (single) HTTP response. */
function rawRequest(data: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 10 s; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, 10_000);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server may reset the connection after answering a request it could not parse.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      if (split === -1) return reject(new Error(`no HTTP response: ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
      resolve({ status, statusLine: statusLine!, headers, body: text.slice(split + 4) });
    });
  });
}

const rawGet = (path: string, extraHeaders = '') =>
  rawRequest(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${PROXY_KEY}\r\n${extraHeaders}Connection: close\r\n\r\n`);

/** Asserts the OpenAI error shape and returns the error object. */
function expectErrorShape(body: unknown): { message: string; type: string; code: string | null; param: string | null } {
  expect(body).toEqual({
    error: {
      message: expect.any(String),
      type: expect.any(String),
      code: expect.anything(),
      param: null,
    },
  });
  const error = (body as { error: { message: string; type: string; code: string | null; param: string | null } }).error;
  expect(error.message.length).toBeGreaterThan(0);
  expect(typeof error.code).toBe('string');
  return error;
}

async function post(path: string, init: { headers?: Record<string, string>; body?: string }) {
  const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: init.headers, body: init.body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { res, json };
}

/** Number of requests the mock upstream received while running `fn`. */
async function upstreamCalls(fn: () => Promise<void>): Promise<number> {
  const before = gw.mock.requests.length;
  await fn();
  return gw.mock.requests.length - before;
}

describe('authentication', () => {
  it('answers 401 with WWW-Authenticate: Bearer when no key is sent', async () => {
    const calls = await upstreamCalls(async () => {
      const { res, json } = await post('/v1/chat/completions', { headers: { 'content-type': 'application/json' }, body: chatBody() });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.headers.get('content-type')).toContain('application/json');
      const error = expectErrorShape(json);
      expect(error.code).toBe('invalid_api_key');
    });
    expect(calls).toBe(0);
  });

  it('answers 401 for a wrong key', async () => {
    const calls = await upstreamCalls(async () => {
      const { res, json } = await post('/v1/chat/completions', { headers: authHeaders('pgpt-not-a-real-key-000000000000'), body: chatBody() });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expectErrorShape(json);
    });
    expect(calls).toBe(0);
  });

  it.each([
    ['Basic scheme', 'Basic x'],
    ['Basic with the real key', `Basic ${PROXY_KEY}`],
    ['Bearer alone', 'Bearer'],
    ['Bearer and a space', 'Bearer '],
    ['two tokens', `Bearer ${PROXY_KEY} extra`],
    ['key without scheme', PROXY_KEY],
    ['key as prefix of the real key', `Bearer ${PROXY_KEY.slice(0, -1)}`],
    ['real key with a suffix', `Bearer ${PROXY_KEY}x`],
  ])('answers 401 for a malformed Authorization header (%s)', async (_name, authorization) => {
    const { res, json } = await post('/v1/chat/completions', { headers: { authorization, 'content-type': 'application/json' }, body: chatBody() });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expectErrorShape(json);
  });

  it('accepts the scheme in any case (RFC 7235)', async () => {
    const { res } = await post('/v1/chat/completions', { headers: { authorization: `bearer ${PROXY_KEY}`, 'content-type': 'application/json' }, body: chatBody() });
    expect(res.status).toBe(200);
  });

  it('checks the key before reading the body: no key + invalid JSON is 401, not 400', async () => {
    const { res, json } = await post('/v1/chat/completions', { headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(res.status).toBe(401);
    expectErrorShape(json);
  });

  it('checks the key before the content type and the size: no key + text/plain or a huge body is 401', async () => {
    const plain = await post('/v1/chat/completions', { headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(plain.res.status).toBe(401);
    const huge = await post('/v1/chat/completions', { headers: { 'content-type': 'application/json' }, body: 'x'.repeat(MAX_BODY * 4) });
    expect(huge.res.status).toBe(401);
    expectErrorShape(huge.json);
  });

  it('requires a key on the legacy route and on /ratelimit too', async () => {
    const legacy = await post('/api/openai/completions/gpt3', { headers: { 'content-type': 'application/json' }, body: '{broken' });
    expect(legacy.res.status).toBe(401);
    expectErrorShape(legacy.json);
    const status = await fetch(`${gw.url}/ratelimit`);
    expect(status.status).toBe(401);
    expect(status.headers.get('www-authenticate')).toBe('Bearer');
    expectErrorShape(await status.json());
  });
});

describe('request bodies', () => {
  it('answers 400 for malformed JSON', async () => {
    const calls = await upstreamCalls(async () => {
      const { res, json } = await post('/v1/chat/completions', { headers: authHeaders(), body: '{"model": "gpt-4o-mini", ' });
      expect(res.status).toBe(400);
      expect(expectErrorShape(json).code).toBe('invalid_json');
    });
    expect(calls).toBe(0);
  });

  it.each([
    ['an array', '[{"model":"gpt-4o-mini"}]'],
    ['a string', '"gpt-4o-mini"'],
    ['a number', '42'],
    ['a boolean', 'true'],
  ])('answers 400 when the JSON body is %s instead of an object', async (_name, body) => {
    const calls = await upstreamCalls(async () => {
      const { res, json } = await post('/v1/chat/completions', { headers: authHeaders(), body });
      expect(res.status).toBe(400);
      expectErrorShape(json);
    });
    expect(calls).toBe(0);
  });

  // The JSON literal `null` must not slip past the object check (x-mock-status keeps the mock
  // from choking on it if it ever does).
  it('answers 400 when the JSON body is null', async () => {
    const calls = await upstreamCalls(async () => {
      const { res, json } = await post('/v1/chat/completions', { headers: { ...authHeaders(), 'x-mock-status': '299' }, body: 'null' });
      expect(res.status).toBe(400);
      expectErrorShape(json);
    });
    expect(calls).toBe(0);
  });

  it('answers 400 for an empty body with a JSON content type', async () => {
    const { res, json } = await post('/v1/chat/completions', { headers: authHeaders(), body: '' });
    expect(res.status).toBe(400);
    expect(expectErrorShape(json).code).toBe('invalid_json');
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'application/jsonx'])(
    'answers 415 for Content-Type %s',
    async (contentType) => {
      const calls = await upstreamCalls(async () => {
        const { res, json } = await post('/v1/chat/completions', { headers: { ...authHeaders(), 'content-type': contentType }, body: chatBody() });
        expect(res.status).toBe(415);
        expect(expectErrorShape(json).code).toBe('unsupported_media_type');
      });
      expect(calls).toBe(0);
    },
  );

  it('answers 415 for a body without any Content-Type', async () => {
    const calls = await upstreamCalls(async () => {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${PROXY_KEY}` },
        body: new Blob([chatBody()]), // a Blob without a type sends no Content-Type
      });
      expect(res.status).toBe(415);
      expectErrorShape(await res.json());
    });
    expect(calls).toBe(0);
  });

  it('accepts application/json with a charset parameter', async () => {
    const { res } = await post('/v1/chat/completions', { headers: { ...authHeaders(), 'content-type': 'application/json; charset=utf-8' }, body: chatBody() });
    expect(res.status).toBe(200);
  });

  it('answers 413 for a body over PROXYGPT_MAX_BODY_BYTES (Content-Length known)', async () => {
    const calls = await upstreamCalls(async () => {
      const body = chatBody({ padding: 'x'.repeat(MAX_BODY) });
      expect(Buffer.byteLength(body)).toBeGreaterThan(MAX_BODY);
      const { res, json } = await post('/v1/chat/completions', { headers: authHeaders(), body });
      expect(res.status).toBe(413);
      expect(expectErrorShape(json).code).toBe('request_too_large');
    });
    expect(calls).toBe(0);
  });

  it('accepts a body just under the limit', async () => {
    const base = chatBody({ padding: '' });
    const body = chatBody({ padding: 'x'.repeat(MAX_BODY - Buffer.byteLength(base)) });
    expect(Buffer.byteLength(body)).toBe(MAX_BODY);
    const { res } = await post('/v1/chat/completions', { headers: authHeaders(), body });
    expect(res.status).toBe(200);
  });

  it('answers 413 for a chunked body that grows over the limit (no Content-Length)', async () => {
    const before = gw.mock.requests.length;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: authHeaders() },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      // Written in pieces without a length: Node sends Transfer-Encoding: chunked.
      for (let i = 0; i < 8; i++) req.write('x'.repeat(MAX_BODY / 2));
      req.end();
    });
    expect(status).toBe(413);
    expectErrorShape(JSON.parse(body));
    expect(gw.mock.requests.length).toBe(before);
  });
});

describe('request paths', () => {
  it.each([
    ['dot segments', '/v1/../ratelimit'],
    ['dot segments under an allowed route', '/v1/chat/../../ratelimit'],
    ['a single dot segment', '/v1/./chat/completions'],
    ['encoded dot segments', '/v1/%2e%2e/ratelimit'],
    ['upper-case encoded dots', '/v1/%2E%2E/ratelimit'],
    ['double-encoded dot segments', '/v1/%252e%252e/x'],
    ['quadruple-encoded dot segments', '/v1/%2525252e%2525252e/ratelimit'],
    ['five times encoded dot segments', '/v1/%252525252e%252525252e/ratelimit'],
    ['an encoded slash with dots', '/v1/chat%2f..%2f..%2fratelimit'],
    ['backslashes', '/v1\\..\\ratelimit'],
    ['an encoded backslash', '/v1/%5c..%5cratelimit'],
    ['an encoded NUL', '/v1/chat/completions%00'],
    ['an empty segment', '/v1//chat/completions'],
  ])('answers 400 for a path with %s', async (_name, path) => {
    const calls = await upstreamCalls(async () => {
      const res = await rawGet(path);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toContain('application/json');
      expect(expectErrorShape(JSON.parse(res.body)).code).toBe('invalid_path');
    });
    expect(calls).toBe(0);
  });

  it('answers 400 for a raw NUL byte in the path (rejected by the HTTP parser)', async () => {
    const res = await rawGet('/v1/chat\0/completions');
    expect(res.status).toBe(400);
    expectErrorShape(JSON.parse(res.body));
  });

  it('rejects dot segments in a POST with a body as well, before forwarding', async () => {
    const body = chatBody();
    const calls = await upstreamCalls(async () => {
      const res = await rawRequest(
        `POST /v1/chat/completions/../completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      expect(res.status).toBe(400);
      expectErrorShape(JSON.parse(res.body));
    });
    expect(calls).toBe(0);
  });

  // Fastify rejects malformed percent-encoding before routing; server.ts passes frameworkErrors so
  // the answer still has OpenAI's shape.
  it('answers 400 in OpenAI shape for malformed percent-encoding', async () => {
    const res = await rawGet('/v1/%zz');
    expect(res.status).toBe(400);
    expectErrorShape(JSON.parse(res.body));
  });

  it('answers 404 in OpenAI shape for an unknown route', async () => {
    const res = await fetch(`${gw.url}/no/such/route`, { headers: authHeaders() });
    expect(res.status).toBe(404);
    expect(expectErrorShape(await res.json()).code).toBe('not_found');
    const post404 = await post('/api/openai/completions/gpt4', { headers: authHeaders(), body: '[]' });
    expect(post404.res.status).toBe(404);
    expectErrorShape(post404.json);
  });
});

describe('policy', () => {
  it('answers 403 for a /v1 endpoint that is not enabled', async () => {
    const calls = await upstreamCalls(async () => {
      const models = await fetch(`${gw.url}/v1/models`, { headers: authHeaders() });
      expect(models.status).toBe(403);
      expect(expectErrorShape(await models.json()).code).toBe('endpoint_not_allowed');
      const images = await post('/v1/images/generations', { headers: authHeaders(), body: '{"prompt":"x"}' });
      expect(images.res.status).toBe(403);
      expectErrorShape(images.json);
      // An enabled path with another method is a different endpoint.
      const get = await fetch(`${gw.url}/v1/chat/completions`, { headers: authHeaders() });
      expect(get.status).toBe(403);
      expectErrorShape(await get.json());
    });
    expect(calls).toBe(0);
  });

  it('authenticates before the endpoint policy: a wrong key on a disabled endpoint is 401', async () => {
    const res = await fetch(`${gw.url}/v1/models`, { headers: authHeaders('pgpt-wrong-key-00000000000000') });
    expect(res.status).toBe(401);
    expectErrorShape(await res.json());
    const none = await fetch(`${gw.url}/v1/models`);
    expect(none.status).toBe(401);
  });

  it('checks the endpoint before the body: a disabled endpoint with invalid JSON is 403', async () => {
    const res = await post('/v1/images/generations', { headers: authHeaders(), body: '{broken' });
    expect(res.res.status).toBe(403);
  });

  it('allows models matching PROXYGPT_ALLOWED_MODELS globs and denies the others with 403', async () => {
    const allowed = await post('/v1/chat/completions', { headers: authHeaders(), body: chatBody({ model: 'gpt-4o-mini' }) });
    expect(allowed.res.status).toBe(200);
    const exact = await post('/v1/chat/completions', { headers: authHeaders(), body: chatBody({ model: 'gpt-4o' }) });
    expect(exact.res.status).toBe(200);

    const calls = await upstreamCalls(async () => {
      for (const model of ['gpt-3.5-turbo', 'GPT-4O-MINI', 'x-gpt-4o', 'gpt-4']) {
        const denied = await post('/v1/chat/completions', { headers: authHeaders(), body: chatBody({ model }) });
        expect(denied.res.status, `model ${JSON.stringify(model)}`).toBe(403);
        expect(expectErrorShape(denied.json).code).toBe('model_not_allowed');
      }
      for (const model of [42, ['gpt-4o'], null]) {
        const invalid = await post('/v1/chat/completions', { headers: authHeaders(), body: chatBody({ model }) });
        expect(invalid.res.status, `model ${JSON.stringify(model)}`).toBe(400);
        expect(invalid.json).toMatchObject({ error: { type: 'invalid_request_error', param: 'model' } });
      }
      const embeddings = await post('/v1/embeddings', { headers: authHeaders(), body: '{"model":"text-embedding-3-small","input":"x"}' });
      expect(embeddings.res.status).toBe(403);
    });
    expect(calls).toBe(0);
  });

  it('applies the model allowlist to the streaming form as well', async () => {
    const denied = await post('/v1/chat/completions', { headers: authHeaders(), body: chatBody({ model: 'gpt-3.5-turbo', stream: true }) });
    expect(denied.res.status).toBe(403);
    expectErrorShape(denied.json);
  });
});

describe('malformed HTTP at the socket level', () => {
  it('answers 400 for a header name with a space', async () => {
    const res = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n`);
    expect(res.status).toBe(400);
    expectErrorShape(JSON.parse(res.body));
  });

  it('answers 400 for control characters in a header value', async () => {
    const res = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: a\x01\x7fb\r\n\r\n`);
    expect(res.status).toBe(400);
    expectErrorShape(JSON.parse(res.body));
  });

  it('answers 400 for a garbage request line', async () => {
    const res = await rawRequest(`\x16\x03\x01 hello there\r\n\r\n`);
    expect(res.status).toBe(400);
    expectErrorShape(JSON.parse(res.body));
  });

  it('answers 400 for a header without a colon', async () => {
    const res = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n`);
    expect(res.status).toBe(400);
  });

  it('answers 431 for headers over 16 KB', async () => {
    const res = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expect(res.status).toBe(431);
    expect(expectErrorShape(JSON.parse(res.body)).code).toBe('headers_too_large');
  });

  it('answers 400 for conflicting Content-Length and Transfer-Encoding (request smuggling)', async () => {
    const body = chatBody();
    const res = await rawRequest(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(res.status).toBe(400);
  });
});

describe('error handler units', () => {
  function fakeSocket(options: { writable?: boolean; headersSent?: boolean } = {}) {
    const state = { written: '', destroyed: false };
    const socket = {
      writable: options.writable ?? true,
      _httpMessage: options.headersSent === undefined ? null : { headersSent: options.headersSent },
      end(data: string) {
        state.written += data;
      },
      destroy() {
        state.destroyed = true;
      },
    };
    return { socket: socket as unknown as Socket, state };
  }

  it('clientErrorHandler answers 408 in OpenAI shape for a request that timed out', () => {
    const { socket, state } = fakeSocket();
    clientErrorHandler(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
    expect(state.written).toMatch(/^HTTP\/1\.1 408 /);
    expectErrorShape(JSON.parse(state.written.split('\r\n\r\n')[1]!));
  });

  it('clientErrorHandler writes nothing into a connection whose response has started', () => {
    const { socket, state } = fakeSocket({ headersSent: true });
    clientErrorHandler(Object.assign(new Error('parse'), { code: 'HPE_INVALID_METHOD' }), socket);
    expect(state.written).toBe('');
    expect(state.destroyed).toBe(true);
    const reset = fakeSocket();
    clientErrorHandler(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset.socket);
    expect(reset.state.written).toBe('');
    expect(reset.state.destroyed).toBe(true);
  });

  it('frameworkErrorHandler answers routing errors (bad percent-encoding, long parameters) in OpenAI shape', async () => {
    const app = Fastify({ frameworkErrors: frameworkErrorHandler(false, new Redactor([])) });
    app.get('/v1/files/:id', async () => ({ ok: true }));
    try {
      const bad = await app.inject({ method: 'GET', url: '/v1/files/%zz' });
      expect(bad.statusCode).toBe(400);
      expect(expectErrorShape(bad.json()).code).toBe('invalid_url');
      expect(bad.headers['x-proxygpt-request-id']).toBeDefined();
      const long = await app.inject({ method: 'GET', url: `/v1/files/${'a'.repeat(500)}` });
      expect(long.statusCode).toBe(414);
      expectErrorShape(long.json());
    } finally {
      await app.close();
    }
  });
});
