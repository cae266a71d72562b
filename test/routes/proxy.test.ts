/** Pass-through with the official openai SDK as the client: JSON, SSE streaming, key substitution. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { authHeaders, chatBody, OTHER_KEY, PROXY_KEY, startGateway, UPSTREAM_KEY, type TestGateway } from '../helpers.js';

let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  gw = await startGateway({ env: { PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models' } });
  client = new OpenAI({ apiKey: PROXY_KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
});
afterAll(async () => gw.close());

describe('OpenAI-compatible pass-through', () => {
  it('answers a chat completion through the official SDK', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ping pong' }] });
    expect(completion.choices[0]?.message.content).toBe('Echo: ping pong');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('streams chunk by chunk through the official SDK', async () => {
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'a b c d' }], stream: true },
      { headers: { 'x-mock-chunks': '5' } },
    );
    const deltas: string[] = [];
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content;
      if (content) deltas.push(content);
    }
    expect(deltas).toEqual(['Echo: ', 'a ', 'b ', 'c ', 'd ']);
  });

  it('delivers each SSE chunk as it is produced, not buffered to the end', async () => {
    const response = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '150' },
      body: chatBody({ stream: true }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const first = await reader.read();
    // The first chunk arrives while the mock is still producing the rest (it waits 150 ms per chunk).
    expect(new TextDecoder().decode(first.value)).toContain('"role":"assistant"');
    expect(gw.mock.inFlight).toBe(1);
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('data: [DONE]');
  });

  it('replaces the proxy key with the upstream key and never forwards the client key', async () => {
    gw.mock.reset();
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    const seen = gw.mock.requests[0]!;
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(JSON.stringify(seen.headers)).not.toContain(PROXY_KEY);
    expect(seen.url).toBe('/v1/chat/completions');
  });

  it('forwards the body bytes unchanged', async () => {
    gw.mock.reset();
    const body = '{"model":"gpt-4o-mini",   "messages":[{"role":"user","content":"spacing \\u00e9"}], "extra_field": [1, 2]}';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body });
    expect(res.status).toBe(200);
    expect(gw.mock.requests[0]!.body).toBe(body);
  });

  it('passes embeddings and model listing through when enabled', async () => {
    const embedding = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' });
    expect(embedding.data[0]?.embedding.map((v) => Math.round(v * 10) / 10)).toEqual([0.1, 0.2, 0.3]);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain('gpt-4o-mini');
  });

  it('passes upstream errors through with their status and body', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(OTHER_KEY), 'x-mock-status': '418' },
      body: chatBody(),
    });
    expect(res.status).toBe(418);
    expect(await res.json()).toEqual({ error: { message: 'mock error 418', type: 'mock_error', code: 'mock', param: null } });
  });

  it('keeps the upstream status visible to the SDK as an APIError', async () => {
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }, { headers: { 'x-mock-status': '400' } }),
    ).rejects.toMatchObject({ status: 400 });
  });
});
