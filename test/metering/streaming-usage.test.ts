/**
 * Token metering over real HTTP with the official `openai` SDK as the client.
 *
 * Streams: the gateway always asks the upstream for usage (`stream_options.include_usage`), so a
 * stream is metered whether the client asked or not; a client that did not ask gets exactly the
 * chunks it would have got from the upstream directly (no usage-only chunk, no `"usage":null`
 * fields), a client that asked gets the usage chunk. Tokens are settled to the reported usage.
 * JSON answers, Responses-API answers (JSON and streamed) and embeddings are metered from their
 * `usage`. When the upstream reports none, the tokens are counted with the tokenizer (the record
 * is marked `estimated`). Expected counts come from the tokenizer library (o200k_base) and expected
 * costs from gpt-4o-mini's $0.15 / $0.075 cached / $0.60 per 1M tokens, worked out here.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import type { TestGateway } from '../helpers.js';
import { call, chatRequest, createKey, settledUsage, startAdminGateway, usageRows, type CreatedKey } from '../keys/helpers.js';

let gw: TestGateway;
let key: CreatedKey;
let viaGateway: OpenAI;
let direct: OpenAI;
/** Tokens settled so far on `key` (the test's running total). */
let settled = 0;
let records = 0;

beforeAll(async () => {
  gw = await startAdminGateway({ PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/responses, POST /v1/embeddings' });
  key = await createKey(gw, { name: 'metered', tokens_per_hour: 1_000_000, usd_per_month: 100 });
  viaGateway = new OpenAI({ apiKey: key.key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  direct = new OpenAI({ apiKey: 'sk-direct-to-the-mock', baseURL: gw.mock.url, maxRetries: 0 });
});
afterAll(async () => gw?.close());
beforeEach(() => gw.mock.reset());

const messages = [{ role: 'user' as const, content: 'count my tokens please' }];
/** The prompt of `messages` as the upstream counts it: the text, 4 for the message, 3 for the reply. */
const PROMPT_TOKENS = encode('count my tokens please').length + 4 + 3;
/** gpt-4o-mini without cached tokens, in micro-dollars rounded up (15 and 60 hundredths a token). */
const miniCost = (prompt: number, completion: number) => Math.ceil((prompt * 15 + completion * 60) / 100);

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Expects `tokens` more settled on the key, and one more usage record; returns that record. */
async function expectSettled(tokens: number) {
  settled += tokens;
  await settledUsage(gw, key.key, 'tokens_per_hour', settled);
  records += 1;
  const rows = await usageRows(gw, key.id, records);
  return rows[records - 1]!;
}

describe('streamed chat completions', () => {
  for (const usageNull of [false, true]) {
    const headers = { 'x-mock-chunks': '5', ...(usageNull ? { 'x-mock-usage-null': '1' } : {}) };
    const label = usageNull ? ' (upstream puts "usage":null on every chunk, as OpenAI does)' : '';

    it(`a client that did not ask for usage sees exactly the upstream's chunks without it${label}`, async () => {
      const expected = await collect(await direct.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { headers }));
      expect(expected.some((c) => 'usage' in c)).toBe(false);
      gw.mock.reset();

      const chunks = await collect(await viaGateway.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { headers }));
      expect(chunks).toEqual(expected);
      expect(chunks.some((c) => c.choices.length === 0)).toBe(false);

      // The gateway asked the upstream for usage on the client's behalf.
      expect(gw.mock.requests).toHaveLength(1);
      expect(JSON.parse(gw.mock.requests[0]!.body)).toMatchObject({ stream: true, stream_options: { include_usage: true } });

      const row = await expectSettled(10 + 5);
      expect(row).toMatchObject({ prompt_tokens: 10, completion_tokens: 5, stream: 1, estimated: 0, status: 200 });
      expect(row.cost_micro_usd).toBe(5); // 10 × 0.15 + 5 × 0.6 = 4.5 µ$, rounded up
    });

    it(`a client that asked for usage gets the usage chunk, and its request goes up as sent (plus the key's completion cap)${label}`, async () => {
      const body = { model: 'gpt-4o-mini', messages, stream: true as const, stream_options: { include_usage: true } };
      const expected = await collect(await direct.chat.completions.create(body, { headers }));
      const upstreamBody = gw.mock.requests[0]!.body;
      gw.mock.reset();

      const chunks = await collect(await viaGateway.chat.completions.create(body, { headers }));
      expect(chunks).toEqual(expected);
      const last = chunks[chunks.length - 1]!;
      expect(last.choices).toEqual([]);
      expect(last.usage).toEqual({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
      if (usageNull) expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
      // The body went up as the SDK sent it, plus the completion cap of this metered key (the
      // client named none, so the gateway caps it at the budget it reserved).
      expect(JSON.parse(gw.mock.requests[0]!.body)).toEqual({ ...JSON.parse(upstreamBody), max_completion_tokens: 1024 });

      await expectSettled(15);
    });
  }

  it('include_usage: false from the client is turned on upstream and the chunk is still hidden', async () => {
    const chunks = await collect(
      await viaGateway.chat.completions.create(
        { model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: false } },
        { headers: { 'x-mock-chunks': '4', 'x-mock-completion-tokens': '321' } },
      ),
    );
    expect(chunks.some((c) => c.choices.length === 0 || c.usage)).toBe(false);
    expect(JSON.parse(gw.mock.requests[0]!.body).stream_options).toEqual({ include_usage: true });
    await expectSettled(10 + 321);
  });

  it('settles to the reported usage, cached prompt tokens priced as cached', async () => {
    const chunks = await collect(
      await viaGateway.chat.completions.create(
        { model: 'gpt-4o-mini', messages, stream: true },
        { headers: { 'x-mock-prompt-tokens': '2000', 'x-mock-cached-tokens': '1500', 'x-mock-completion-tokens': '250' } },
      ),
    );
    expect(chunks.length).toBeGreaterThan(2);
    const row = await expectSettled(2_250);
    expect(row).toMatchObject({ prompt_tokens: 2_000, completion_tokens: 250, estimated: 0 });
    expect(row.cost_micro_usd).toBe(338); // 500 × 0.15 + 1500 × 0.075 + 250 × 0.6 = 75 + 112.5 + 150 µ$, rounded up
  });

  it('no usage from the upstream (include_usage ignored): counted with the tokenizer, marked estimated', async () => {
    const chunks = await collect(
      await viaGateway.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { headers: { 'x-mock-usage': 'none', 'x-mock-chunks': '4' } }),
    );
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('Echo: count my tokens ');
    const completion = encode(text).length;
    const row = await expectSettled(PROMPT_TOKENS + completion);
    expect(row).toMatchObject({ prompt_tokens: PROMPT_TOKENS, completion_tokens: completion, estimated: 1, stream: 1 });
    expect(row.cost_micro_usd).toBe(miniCost(PROMPT_TOKENS, completion));
  });
});

describe('JSON answers', () => {
  it('chat completion: settles to the reported usage', async () => {
    const completion = await viaGateway.chat.completions.create(
      { model: 'gpt-4o-mini', messages, max_tokens: 500 },
      { headers: { 'x-mock-prompt-tokens': '77', 'x-mock-completion-tokens': '222' } },
    );
    expect(completion.usage).toMatchObject({ prompt_tokens: 77, completion_tokens: 222, total_tokens: 299 });
    // JSON bodies go up unchanged (no stream_options added).
    expect(JSON.parse(gw.mock.requests[0]!.body).stream_options).toBeUndefined();
    const row = await expectSettled(299);
    expect(row).toMatchObject({ prompt_tokens: 77, completion_tokens: 222, estimated: 0, stream: 0 });
  });

  it('no usage in the answer: counted with the tokenizer (prompt and the assistant text), marked estimated', async () => {
    const completion = await viaGateway.chat.completions.create({ model: 'gpt-4o-mini', messages }, { headers: { 'x-mock-usage': 'none' } });
    expect(completion.usage).toBeUndefined();
    expect(completion.choices[0]!.message.content).toBe('Echo: count my tokens please');
    const completionTokens = encode('Echo: count my tokens please').length;
    const row = await expectSettled(PROMPT_TOKENS + completionTokens);
    expect(row).toMatchObject({ prompt_tokens: PROMPT_TOKENS, completion_tokens: completionTokens, estimated: 1 });
  });

  it('embeddings: prompt tokens only', async () => {
    const res = await viaGateway.embeddings.create({ model: 'text-embedding-3-small', input: 'embed me' }, { headers: { 'x-mock-prompt-tokens': '42' } });
    expect(res.usage).toMatchObject({ prompt_tokens: 42 });
    const row = await expectSettled(42);
    expect(row).toMatchObject({ prompt_tokens: 42, completion_tokens: 0, model: 'text-embedding-3-small' });
    expect(row.cost_micro_usd).toBe(Math.ceil(42 * 0.02));
  });

  it('an upstream error costs nothing and releases the reservation', async () => {
    const r = await call(gw, key.key, { body: chatRequest({ max_tokens: 100 }), headers: { 'x-mock-status': '500' } });
    expect(r.status).toBe(500);
    const row = await expectSettled(0);
    expect(row).toMatchObject({ status: 500, prompt_tokens: 0, completion_tokens: 0, cost_micro_usd: 0 });
  });
});

describe('Responses API', () => {
  const headers = { 'x-mock-responses': '1', 'x-mock-prompt-tokens': '64', 'x-mock-cached-tokens': '32', 'x-mock-completion-tokens': '16' };

  it('JSON: settles to input_tokens + output_tokens, cached input priced as cached', async () => {
    const response = await viaGateway.responses.create({ model: 'gpt-4o-mini', input: 'respond please' }, { headers });
    expect(response.output_text).toBe('Echo: respond please');
    expect(response.usage).toMatchObject({ input_tokens: 64, output_tokens: 16 });
    const row = await expectSettled(80);
    expect(row).toMatchObject({ prompt_tokens: 64, completion_tokens: 16, estimated: 0, path: '/v1/responses' });
    expect(row.cost_micro_usd).toBe(17); // 32 × 0.15 + 32 × 0.075 + 16 × 0.6 = 4.8 + 2.4 + 9.6 µ$, rounded up
  });

  it('streamed: settles to the usage of response.completed; every event reaches the client', async () => {
    const events: string[] = [];
    const stream = await viaGateway.responses.create({ model: 'gpt-4o-mini', input: 'stream please', stream: true }, { headers });
    for await (const event of stream) events.push(event.type);
    expect(events).toEqual(['response.created', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta', 'response.completed']);
    // Responses streams carry usage anyway: the body goes up unchanged.
    expect(JSON.parse(gw.mock.requests[0]!.body).stream_options).toBeUndefined();
    const row = await expectSettled(80);
    expect(row).toMatchObject({ prompt_tokens: 64, completion_tokens: 16, stream: 1 });
  });

  it('no usage reported: counted with the tokenizer from the input and the text deltas', async () => {
    const stream = await viaGateway.responses.create(
      { model: 'gpt-4o-mini', input: 'no usage here', stream: true },
      { headers: { 'x-mock-responses': '1', 'x-mock-usage': 'none' } },
    );
    let text = '';
    for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
    expect(text).toBe('Echo: no usage here ');
    // A bare `input` string: its tokens and nothing for a chat format.
    const prompt = encode('no usage here').length;
    const completion = encode(text).length;
    const row = await expectSettled(prompt + completion);
    expect(row).toMatchObject({ estimated: 1, prompt_tokens: prompt, completion_tokens: completion });
  });
});
