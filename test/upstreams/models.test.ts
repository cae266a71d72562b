/**
 * GET /v1/models with several upstreams, answered by the gateway: the models of every upstream
 * (named in the file, and those an upstream's own list has that its globs match), each owned by
 * the upstream that serves it, cut down by the gateway's and the key's allowlists; a lookup of one
 * model; the upstreams' lists asked at most once a minute. Not reserved, not recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY } from '../helpers.js';
import { ADMIN_KEY, createKey } from '../keys/helpers.js';
import { manualClock, openaiEntry, requestsTo, startRoutedGateway, type ManualClock, type RoutedGateway } from './helpers.js';

let a: MockOpenAI;
let azure: MockOpenAI;
let local: MockOpenAI;
let clock: ManualClock;
let gw: RoutedGateway;

const ids = (body: unknown) => (body as { data: { id: string }[] }).data.map((m) => m.id);

async function get(path: string, key = PROXY_KEY): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  [a, azure, local] = await Promise.all([startMockOpenAI(), startMockOpenAI(), startMockOpenAI()]);
  clock = manualClock();
  gw = await startRoutedGateway({
    clock,
    file: {
      upstreams: [
        // The mock's own list has gpt-4o-mini: the glob lists it.
        openaiEntry('a', a, { models: ['gpt-4o*'] }),
        { name: 'azure', kind: 'azure', base_url: `http://127.0.0.1:${azure.port}`, api_key: '${AZURE_KEY}', api_version: '2024-10-21', models: { 'gpt-4.1': 'dep41', 'text-embedding-3-small': 'emb', 'gpt-4o-mini': 'mini-dep' } },
        // Its list (gpt-4o-mini) matches no glob of its own: it adds only llama-3.
        { name: 'local', kind: 'openai-compatible', base_url: local.url, models: { 'llama-3': 'meta-llama/Llama-3-8B', 'qwen*': null } },
      ],
    },
    env: {
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, GET /v1/models, GET /v1/models/*',
      PROXYGPT_ALLOWED_MODELS: 'gpt-4*,llama-*',
      LOG_LEVEL: 'warn',
    },
  });
});
afterAll(async () => {
  await gw.close();
  await Promise.all([a.close(), azure.close(), local.close()]);
});

describe('GET /v1/models across upstreams', () => {
  it('lists the models of every upstream the gateway allows, each owned by the upstream that serves it first', async () => {
    const { status, body } = await get('/v1/models');
    expect(status).toBe(200);
    // text-embedding-3-small is served (by azure) but not in PROXYGPT_ALLOWED_MODELS.
    expect(body).toEqual({
      object: 'list',
      data: [
        { id: 'gpt-4.1', object: 'model', created: 0, owned_by: 'azure' },
        { id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'a' },
        { id: 'llama-3', object: 'model', created: 0, owned_by: 'local' },
      ],
    });
    // Asked the upstreams with globs, each with its own key and address.
    expect(requestsTo(a, '/v1/models')).toHaveLength(1);
    expect(requestsTo(local, '/v1/models')).toHaveLength(1);
    expect(azure.requests).toHaveLength(0);
  });

  it('a stored key sees only what its own list allows as well', async () => {
    const key = await createKey(gw, { name: 'llama-only', models: ['llama-*', 'gpt-4.1'] });
    expect(ids((await get('/v1/models', key.key)).body)).toEqual(['gpt-4.1', 'llama-3']);
    expect((await get('/v1/models/gpt-4o-mini', key.key)).status).toBe(404);
  });

  it('one model: its object, or 404 model_not_found when no upstream serves it or the caller may not use it', async () => {
    expect(await get('/v1/models/llama-3')).toEqual({ status: 200, body: { id: 'llama-3', object: 'model', created: 0, owned_by: 'local' } });
    expect(await get('/v1/models/gpt-4o-2024-08-06')).toEqual({ status: 200, body: { id: 'gpt-4o-2024-08-06', object: 'model', created: 0, owned_by: 'a' } });
    const unknown = await get('/v1/models/claude-3-opus');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: { code: 'model_not_found', param: 'model' } });
    expect((await get('/v1/models/text-embedding-3-small')).status).toBe(404);
  });

  it('the upstreams’ lists are asked again only after a minute', async () => {
    const before = requestsTo(a, '/v1/models').length;
    await get('/v1/models');
    clock.advance(59_000);
    await get('/v1/models');
    expect(requestsTo(a, '/v1/models')).toHaveLength(before);
    clock.advance(1_001);
    await get('/v1/models');
    expect(requestsTo(a, '/v1/models')).toHaveLength(before + 1);
  });

  it('an upstream whose list fails still contributes the models it names', async () => {
    a.forced = { 'x-mock-status': '500' };
    local.forced = { 'x-mock-status': '500' };
    clock.advance(60_001);
    try {
      const { status, body } = await get('/v1/models');
      expect(status).toBe(200);
      // gpt-4o-mini is still listed: azure names it.
      expect(ids(body)).toEqual(['gpt-4.1', 'gpt-4o-mini', 'llama-3']);
    } finally {
      a.forced = {};
      local.forced = {};
    }
  });
});
