/**
 * Bad input, paths and raw HTTP: path tricks (dot segments, encodings, NUL) sent as raw bytes over a
 * socket since fetch() would normalise them, unknown routes, malformed HTTP at the socket level, and
 * the error handlers as units — all answered in OpenAI's error shape, with the gateway still serving
 * after every test.
 */
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import type { Socket } from 'node:net';
import { authHeaders, chatBody, PROXY_KEY } from '../helpers.js';
import { clientErrorHandler, frameworkErrorHandler } from '../../src/http/error-handler.js';
import { Redactor } from '../../src/redact.js';
import { badInputGateway, expectErrorShape } from './bad-input-helpers.js';

const { ctx, rawRequest, rawGet, post, upstreamCalls } = badInputGateway();

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
    const res = await fetch(`${ctx.gw.url}/no/such/route`, { headers: authHeaders() });
    expect(res.status).toBe(404);
    expect(expectErrorShape(await res.json()).code).toBe('not_found');
    const post404 = await post('/api/openai/completions/gpt4', { headers: authHeaders(), body: '[]' });
    expect(post404.res.status).toBe(404);
    expectErrorShape(post404.json);
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
