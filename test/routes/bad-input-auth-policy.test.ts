/**
 * Bad input, who and what: requests without a valid key are 401 (checked before the body, its type
 * and size), and requests outside the endpoint and model allowlists are 403 — in OpenAI's error
 * shape, with nothing reaching the upstream and the gateway still serving after every test.
 */
import { describe, expect, it } from 'vitest';
import { authHeaders, chatBody, PROXY_KEY } from '../helpers.js';
import { badInputGateway, expectErrorShape, MAX_BODY } from './bad-input-helpers.js';

const { ctx, post, upstreamCalls } = badInputGateway();

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
    const status = await fetch(`${ctx.gw.url}/ratelimit`);
    expect(status.status).toBe(401);
    expect(status.headers.get('www-authenticate')).toBe('Bearer');
    expectErrorShape(await status.json());
  });
});

describe('policy', () => {
  it('answers 403 for a /v1 endpoint that is not enabled', async () => {
    const calls = await upstreamCalls(async () => {
      const models = await fetch(`${ctx.gw.url}/v1/models`, { headers: authHeaders() });
      expect(models.status).toBe(403);
      expect(expectErrorShape(await models.json()).code).toBe('endpoint_not_allowed');
      const images = await post('/v1/images/generations', { headers: authHeaders(), body: '{"prompt":"x"}' });
      expect(images.res.status).toBe(403);
      expectErrorShape(images.json);
      // An enabled path with another method is a different endpoint.
      const get = await fetch(`${ctx.gw.url}/v1/chat/completions`, { headers: authHeaders() });
      expect(get.status).toBe(403);
      expectErrorShape(await get.json());
    });
    expect(calls).toBe(0);
  });

  it('authenticates before the endpoint policy: a wrong key on a disabled endpoint is 401', async () => {
    const res = await fetch(`${ctx.gw.url}/v1/models`, { headers: authHeaders('pgpt-wrong-key-00000000000000') });
    expect(res.status).toBe(401);
    expectErrorShape(await res.json());
    const none = await fetch(`${ctx.gw.url}/v1/models`);
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
