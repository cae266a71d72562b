/**
 * Bad input, request bodies: malformed or non-object JSON is 400, a wrong or missing Content-Type
 * 415, a body over PROXYGPT_MAX_BODY_BYTES 413 (with or without a Content-Length) — in OpenAI's
 * error shape, with nothing reaching the upstream and the gateway still serving after every test.
 */
import { describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { authHeaders, chatBody, PROXY_KEY } from '../helpers.js';
import { badInputGateway, expectErrorShape, MAX_BODY } from './bad-input-helpers.js';

const { ctx, post, upstreamCalls } = badInputGateway();

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
      const res = await fetch(`${ctx.gw.url}/v1/chat/completions`, {
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
    const before = ctx.gw.mock.requests.length;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: ctx.port, method: 'POST', path: '/v1/chat/completions', headers: authHeaders() },
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
    expect(ctx.gw.mock.requests.length).toBe(before);
  });
});
