/**
 * Routing by model over real HTTP to several mock upstreams: the request's model picks the
 * upstream; a renamed model reaches it byte-exact in an otherwise untouched body; Azure gets its
 * deployment path, api-version and api-key; a model no upstream serves is a 404 model_not_found
 * with nothing forwarded or reserved; a request without a model goes to the first upstream; a
 * server without a key gets no credential; the client's credentials reach none of them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { PROXY_KEY } from '../helpers.js';
import { watchLimiter } from '../call/watch-limiter.js';
import { chat, KEYS, openaiEntry, postChat, requestsTo, startRoutedGateway, type RoutedGateway } from './helpers.js';

let openai: MockOpenAI;
let azure: MockOpenAI;
let local: MockOpenAI;
let gw: RoutedGateway;

beforeAll(async () => {
  [openai, azure, local] = await Promise.all([startMockOpenAI(), startMockOpenAI(), startMockOpenAI()]);
  gw = await startRoutedGateway({
    file: {
      upstreams: [
        openaiEntry('openai-a', openai, { models: ['gpt-4o*', 'gpt-4.1*'] }),
        {
          name: 'azure',
          kind: 'azure',
          base_url: `http://127.0.0.1:${azure.port}`,
          api_key: '${AZURE_KEY}',
          api_version: '2024-10-21',
          models: { 'o3-mini': 'my-o3-deployment', 'text-embedding-3-small': 'emb-deploy', 'o4-mini': { deployment: 'o4-dep', model: 'o4-mini-2025-04-16' } },
        },
        { name: 'local', kind: 'openai-compatible', base_url: local.url, models: { 'llama-3': 'meta-llama/Llama-3-8B-Instruct', 'qwen*': null } },
      ],
    },
    env: {
      PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings, GET /v1/files',
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: '1000',
      PROXYGPT_LEGACY_MODEL: 'llama-3',
    },
  });
});
afterAll(async () => {
  await gw.close();
  await Promise.all([openai.close(), azure.close(), local.close()]);
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const m of [openai, azure, local]) m.reset();
});

describe('routing by model', () => {
  it('sends each model to the upstream that serves it, with that upstream key', async () => {
    for (const [model, mock] of [['gpt-4o-mini', openai], ['gpt-4.1', openai], ['o3-mini', azure], ['llama-3', local], ['qwen2.5-7b', local]] as const) {
      const res = await postChat(gw, chat(model));
      expect(res.status, model).toBe(200);
      await res.json();
      expect(mock.requests, model).toHaveLength(1);
      mock.reset();
    }
    expect(openai.requests.length + azure.requests.length + local.requests.length).toBe(0);
  });

  it('a renamed model reaches the upstream byte-exact; every other byte of the body is the client’s', async () => {
    // Spacing, key order, a large integer and escapes as a client may send them: JSON.stringify of a parse would change them.
    const raw = '{ "messages" : [{"role":"user","content":"caf\\u00e9 \\"quoted\\""}],\n "seed": 12345678901234567891, "model":"llama-3", "temperature":0.70 }';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' }, body: raw });
    expect(res.status).toBe(200);
    await res.json();
    const [seen] = local.requests;
    expect(seen!.url).toBe('/v1/chat/completions');
    // Only the model's value changed, where it stood.
    expect(seen!.body).toBe(raw.replace('"model":"llama-3"', '"model":"meta-llama/Llama-3-8B-Instruct"'));
  });

  it('a rename together with the usage request of a stream: both in, the client’s other values untouched', async () => {
    const raw = '{"model":"llama-3","stream":true,"seed":12345678901234567891,"messages":[{"role":"user","content":"x"}]}';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' }, body: raw });
    expect(res.status).toBe(200);
    expect(await res.text()).not.toContain('"usage"');
    const sent = local.requests[0]!.body;
    expect(sent).toContain('"model":"meta-llama/Llama-3-8B-Instruct"');
    expect(sent).toContain('"seed":12345678901234567891');
    expect(JSON.parse(sent)).toEqual({ ...JSON.parse(raw), model: 'meta-llama/Llama-3-8B-Instruct', stream_options: { include_usage: true } });
  });

  it('a model served under its own name goes up exactly as the client sent it', async () => {
    const raw = '{"model":"qwen2.5-7b",  "messages":[{"role":"user","content":"x"}], "seed": 12345678901234567891}';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' }, body: raw });
    expect(res.status).toBe(200);
    await res.text();
    expect(local.requests[0]!.bytes.equals(Buffer.from(raw))).toBe(true);
  });

  it('Azure: the deployment path, api-version, the key as api-key and no Authorization; the body keeps the client’s model', async () => {
    const res = await postChat(gw, chat('o3-mini', { temperature: 0 }));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: unknown[] }).choices).toHaveLength(1);
    const [seen] = azure.requests;
    expect(seen!.url).toBe('/openai/deployments/my-o3-deployment/chat/completions?api-version=2024-10-21');
    expect(seen!.headers['api-key']).toBe(KEYS.AZURE_KEY);
    expect(seen!.headers.authorization).toBeUndefined();
    expect(JSON.parse(seen!.body)).toEqual(chat('o3-mini', { temperature: 0 }));
  });

  it('Azure: embeddings to their deployment; a deployment with a renamed model gets both', async () => {
    const emb = await fetch(`${gw.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'text-embedding-3-small', input: 'x' }) });
    expect(emb.status).toBe(200);
    await emb.json();
    expect(requestsTo(azure, '/openai/deployments/emb-deploy/embeddings')).toHaveLength(1);
    const res = await postChat(gw, chat('o4-mini'));
    expect(res.status).toBe(200);
    await res.json();
    const last = azure.requests.at(-1)!;
    expect(last.url).toBe('/openai/deployments/o4-dep/chat/completions?api-version=2024-10-21');
    expect(JSON.parse(last.body).model).toBe('o4-mini-2025-04-16');
  });

  it('Azure: a streamed completion comes back event by event', async () => {
    const res = await postChat(gw, chat('o3-mini', { stream: true }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect(requestsTo(azure, '/openai/deployments/my-o3-deployment/chat/completions')).toHaveLength(1);
  });

  it('a model no upstream serves: 404 model_not_found, nothing forwarded, nothing reserved, no record', async () => {
    const watch = watchLimiter(gw);
    const res = await postChat(gw, chat('claude-3-opus'));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: 'The model "claude-3-opus" does not exist or is not served by this gateway.', type: 'invalid_request_error', code: 'model_not_found', param: 'model' },
    });
    expect(openai.requests.length + azure.requests.length + local.requests.length).toBe(0);
    expect(watch.reserved).toEqual([]);
    expect(watch.refused).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(watch.records).toEqual([]);
  });

  it('the legacy route is routed by PROXYGPT_LEGACY_MODEL, renamed like any call', async () => {
    const res = await fetch(`${gw.url}/api/openai/completions/gpt3`, { method: 'POST', headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' }, body: '[{"role":"user","content":"old style"}]' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ message: 'Echo: old style' });
    expect(JSON.parse(local.requests[0]!.body)).toEqual({ model: 'meta-llama/Llama-3-8B-Instruct', messages: [{ role: 'user', content: 'old style' }] });
    expect(openai.requests.length + azure.requests.length).toBe(0);
  });

  it('a request that names no model goes to the first upstream', async () => {
    const res = await fetch(`${gw.url}/v1/files`, { headers: { authorization: `Bearer ${PROXY_KEY}` } });
    await res.text();
    expect(openai.requests.map((r) => r.url)).toEqual(['/v1/files']);
    expect(openai.requests[0]!.headers.authorization).toBe(`Bearer ${KEYS.KEY_A1}`);
  });

  it('a server that takes no key gets no credential; no upstream ever gets the client’s', async () => {
    const clientCredentials = { 'api-key': 'client-api-key-value-000000', 'x-api-key': 'client-x-api-key-000000', cookie: 'session=client' };
    for (const model of ['llama-3', 'o3-mini', 'gpt-4o']) {
      const res = await postChat(gw, chat(model), clientCredentials);
      expect(res.status, model).toBe(200);
      await res.text();
    }
    expect(local.requests[0]!.headers.authorization).toBeUndefined();
    expect(local.requests[0]!.headers['api-key']).toBeUndefined();
    expect(azure.requests[0]!.headers['api-key']).toBe(KEYS.AZURE_KEY);
    expect(openai.requests[0]!.headers.authorization).toBe(`Bearer ${KEYS.KEY_A1}`);
    for (const seen of [...local.requests, ...azure.requests, ...openai.requests]) {
      const headers = JSON.stringify(seen.headers);
      expect(headers).not.toContain(PROXY_KEY);
      for (const value of Object.values(clientCredentials)) expect(headers).not.toContain(value);
    }
  });
});
