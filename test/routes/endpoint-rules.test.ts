/**
 * Endpoint rules through a real gateway: a prefix rule `GET /v1/models/*` lets the paths below
 * `/v1/models/` through to the upstream, and its look-alike siblings (`/v1/modelsX`,
 * `/v1/models-evil`, `/v1/modelsfoo/bar`), other methods on the same paths, and `/v1/models`
 * itself (which needs its own rule) are refused with 403 endpoint_not_allowed before anything is
 * forwarded. An exact rule admits its path only, not the path with a trailing slash or one
 * character more or less. The same holds for a stored key's own endpoint list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { ADMIN_KEY, call, createKey, type HttpResult } from '../keys/helpers.js';

let gw: TestGateway;
let prefixOnlyKey: string;

beforeAll(async () => {
  gw = await startGateway({
    env: {
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      LOG_LEVEL: 'warn',
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, GET /v1/models, GET /v1/models/*',
    },
  });
  // A stored key with the prefix rule but not the listing.
  prefixOnlyKey = (await createKey(gw, { name: 'models-below', endpoints: ['GET /v1/models/*', 'POST /v1/chat/completions'] })).key;
});
afterAll(async () => gw.close());

const get = (path: string, key = PROXY_KEY, method = 'GET') => call(gw, key, { path, method, body: null });

function expectEndpointRefused(res: HttpResult, what: string): void {
  expect(res.status, `${what}: ${res.text}`).toBe(403);
  expect(res.body).toEqual({ error: { message: expect.any(String), type: 'permission_error', code: 'endpoint_not_allowed', param: null } });
}

/** Asserts `fn` sent nothing upstream. */
async function nothingForwarded(fn: () => Promise<void>): Promise<void> {
  gw.mock.reset();
  await fn();
  expect(gw.mock.requests.map((r) => `${r.method} ${r.url}`)).toEqual([]);
}

const SIBLINGS = ['/v1/modelsX', '/v1/models-evil', '/v1/modelsfoo/bar', '/v1/models.json', '/v1/models_x/gpt-4o'];

describe('a prefix rule (GET /v1/models/*)', () => {
  it('passes the paths below the prefix to the upstream, query string included', async () => {
    gw.mock.reset();
    const one = await get('/v1/models/gpt-4o');
    expect(one.status, one.text).toBe(200);
    expect(one.body).toMatchObject({ id: 'gpt-4o', object: 'model' });
    const tuned = await get('/v1/models/ft:gpt-4o-mini:org:custom:abc123?verbose=1');
    expect(tuned.status, tuned.text).toBe(200);
    expect(gw.mock.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/models/gpt-4o', 'GET /v1/models/ft:gpt-4o-mini:org:custom:abc123?verbose=1']);
  });

  it('refuses its look-alike siblings with 403, forwarding nothing', async () => {
    await nothingForwarded(async () => {
      for (const path of SIBLINGS) expectEndpointRefused(await get(path), path);
    });
  });

  it('refuses other methods on the same paths', async () => {
    await nothingForwarded(async () => {
      expectEndpointRefused(await call(gw, PROXY_KEY, { path: '/v1/models/gpt-4o', method: 'POST', body: {} }), 'POST');
      expectEndpointRefused(await get('/v1/models/ft:gpt-4o-mini:org:custom:abc123', PROXY_KEY, 'DELETE'), 'DELETE');
      expectEndpointRefused(await get('/v1/models', PROXY_KEY, 'DELETE'), 'DELETE /v1/models');
    });
  });

  it('does not cover the bare prefix: GET /v1/models passes only through its own rule', async () => {
    // The gateway has both rules: an environment key may list the models ...
    const listed = await get('/v1/models');
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body).toMatchObject({ object: 'list' });
    // ... a key with only the prefix rule may read one model but not list them.
    await nothingForwarded(async () => {
      const refused = await get('/v1/models', prefixOnlyKey);
      expectEndpointRefused(refused, 'key: /v1/models');
      expect(refused.body.error).toMatchObject({ message: expect.stringContaining('this key') });
      for (const path of SIBLINGS) expectEndpointRefused(await get(path, prefixOnlyKey), `key: ${path}`);
    });
    const one = await get('/v1/models/gpt-4o', prefixOnlyKey);
    expect(one.status, one.text).toBe(200);
  });
});

describe('an exact rule (POST /v1/chat/completions)', () => {
  it('admits its own path only', async () => {
    await nothingForwarded(async () => {
      for (const path of ['/v1/chat/completions/', '/v1/chat/completion', '/v1/chat/completionsX', '/v1/chat/completions/extra', '/v1/chat']) {
        expectEndpointRefused(await call(gw, PROXY_KEY, { path }), path);
      }
      expectEndpointRefused(await get('/v1/chat/completions'), 'GET /v1/chat/completions');
    });
    const ok = await call(gw, PROXY_KEY, { path: '/v1/chat/completions?x=1' });
    expect(ok.status, ok.text).toBe(200);
  });
});
