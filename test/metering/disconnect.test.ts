/**
 * A client that disconnects mid-stream.
 *
 * Policy observed (and documented in the README, "Client disconnects"): when the client goes away
 * in the middle of a streamed answer, the gateway aborts the upstream request at once (generation
 * and its cost stop), does not wait for the upstream's usage chunk, and bills the key for the
 * prompt plus the completion text already relayed, both counted with the tokenizer (gpt-tokenizer,
 * o200k_base; the usage record is marked `estimated` and recorded with status 499). So a disconnect
 * is never free, and costs less than the complete answer would have. The reservation is settled
 * to that amount, so the key's token and spend limits see it at once.
 *
 * A client that leaves before the upstream's response headers (the upstream is still working on
 * the prompt) is billed its prompt. The expected counts come from the tokenizer library itself
 * (o200k_base, plus OpenAI's 4 tokens per chat message and 3 for the reply), not from the gateway.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, fetch } from 'undici';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { dataOf } from '../../src/metering/sse-tap.js';
import type { TestGateway } from '../helpers.js';
import { chatRequest, createKey, eventually, rateLimit, startAdminGateway, usageRows, type CreatedKey } from '../keys/helpers.js';

let gw: TestGateway;
let key: CreatedKey;
let records = 0;

beforeAll(async () => {
  gw = await startAdminGateway();
  key = await createKey(gw, { name: 'leaver', tokens_per_hour: 1_000_000, usd_per_day: 10 });
});
afterAll(async () => gw?.close());
/**
 * Each test's own connection pool, destroyed after it: after an abort the client may open a fresh
 * connection that never carries a request, and such a connection holds the server's close() for
 * up to its headers timeout (Fastify/Node do not count it as idle).
 */
let agent: Agent;
beforeEach(() => {
  gw.mock.reset();
  agent = new Agent();
});
afterEach(async () => agent.destroy());

const PROMPT_TEXT = 'one two three four five six seven eight nine ten';
const body = chatRequest({ stream: true, messages: [{ role: 'user', content: PROMPT_TEXT }] });
/** The prompt of a one-message chat as the upstream counts it: its text, 4 for the message, 3 for the reply. */
const chatPromptTokens = (text: string) => encode(text).length + 4 + 3;
/** gpt-4o-mini's $0.15 / $0.60 per 1M tokens, in micro-dollars rounded up (15 and 60 hundredths a token). */
const miniCost = (prompt: number, completion: number) => Math.ceil((prompt * 15 + completion * 60) / 100);

/** Content deltas in a chunk of SSE text. */
function contentOf(sse: string): string[] {
  return sse
    .split('\n\n')
    .map((event) => dataOf(event))
    .filter((data): data is string => data !== null && data !== '[DONE]')
    .map((data) => (JSON.parse(data) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? '');
}

async function nextRecord() {
  records += 1;
  return (await usageRows(gw, key.id, records))[records - 1]!;
}

async function tokensUsed(): Promise<number> {
  return (await rateLimit(gw, key.key)).body.key!.limits.tokens_per_hour!.used;
}

describe('a client that disconnects mid-stream', () => {
  it('aborts the upstream request and bills the prompt plus the text delivered so far', async () => {
    // What the complete answer costs, counted the same way (the upstream reports no usage here).
    const full = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'x-mock-chunks': '50', 'x-mock-usage': 'none' },
      body: JSON.stringify(body),
      dispatcher: agent,
    });
    const fullText = contentOf(await full.text()).join('');
    const complete = await nextRecord();
    const completeTokens = complete.prompt_tokens + complete.completion_tokens;
    expect(complete).toMatchObject({ status: 200, estimated: 1 });
    expect(complete).toMatchObject({ prompt_tokens: chatPromptTokens(PROMPT_TEXT), completion_tokens: encode(fullText).length });
    const before = await eventually('the complete call is settled', tokensUsed, (used) => used === completeTokens);
    gw.mock.reset();

    // Now leave after a few chunks of a 50-chunk stream that takes 2.5 s.
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '50' },
      body: JSON.stringify(body),
      signal: controller.signal,
      dispatcher: agent,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let received = '';
    while (contentOf(received.slice(0, received.lastIndexOf('\n\n') + 2)).filter((c) => c !== '').length < 3) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended early');
      received += decoder.decode(value, { stream: true });
    }
    controller.abort();
    await reader.read().catch(() => undefined);
    const deliveredText = contentOf(received.slice(0, received.lastIndexOf('\n\n') + 2)).join('');

    // The upstream request is aborted long before its 50 chunks are out.
    await eventually('the upstream request is aborted', () => gw.mock.aborted, (n) => n === 1);
    expect(gw.mock.requests).toHaveLength(1);
    expect(JSON.parse(gw.mock.requests[0]!.body).stream_options).toEqual({ include_usage: true });

    // Billed: the prompt and what was delivered, counted with the tokenizer.
    const row = await nextRecord();
    expect(row).toMatchObject({ status: 499, stream: 1, estimated: 1 });
    const prompt = chatPromptTokens(PROMPT_TEXT);
    expect(row.prompt_tokens).toBe(prompt);
    // At least what this client read (the gateway may have relayed a chunk more before it noticed).
    expect(row.completion_tokens).toBeGreaterThanOrEqual(encode(deliveredText).length);
    const billed = row.prompt_tokens + row.completion_tokens;
    expect(billed).toBeGreaterThan(prompt);
    expect(billed).toBeLessThan(completeTokens);
    expect(row.cost_micro_usd).toBe(miniCost(row.prompt_tokens, row.completion_tokens));
    expect(row.cost_micro_usd).toBeGreaterThan(0);
    console.log(
      `[disconnect] complete stream ${completeTokens} tokens; left after ${JSON.stringify(deliveredText)}: billed ${billed} ` +
        `(${row.prompt_tokens} prompt + ${row.completion_tokens} completion), ${row.cost_micro_usd} µ$`,
    );

    // The key's limits are settled to the same amount (nothing left held).
    await eventually('the disconnect is settled on the key', tokensUsed, (used) => used === before + billed);
  });

  it('also when the client asked for usage itself (the usage chunk never comes)', async () => {
    const before = await tokensUsed();
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '50' },
      body: JSON.stringify({ ...body, stream_options: { include_usage: true } }),
      signal: controller.signal,
      dispatcher: agent,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('data: ');
    controller.abort();
    await reader.read().catch(() => undefined);
    await eventually('the upstream request is aborted', () => gw.mock.aborted, (n) => n === 1);
    const row = await nextRecord();
    expect(row).toMatchObject({ status: 499, estimated: 1 });
    expect(row.prompt_tokens).toBeGreaterThan(0);
    await eventually('settled', tokensUsed, (used) => used === before + row.prompt_tokens + row.completion_tokens);
  });

  // The upstream already has the whole prompt when a client leaves before the response headers:
  // hanging up early must not make long prompts free (the prompt is billed, counted with the
  // tokenizer and marked estimated).
  it('a client that leaves before the response headers is billed its prompt, counted with the tokenizer', async () => {
    const before = await tokensUsed();
    const controller = new AbortController();
    const pending = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'x-mock-delay-ms': '10000' },
      body: JSON.stringify(chatRequest()),
      signal: controller.signal,
      dispatcher: agent,
    });
    await eventually('the upstream has the request', () => gw.mock.requests.length, (n) => n === 1);
    controller.abort();
    await pending.catch(() => undefined);
    await eventually('the upstream request is aborted', () => gw.mock.aborted, (n) => n === 1);
    const row = await nextRecord();
    const prompt = chatPromptTokens('hi there');
    expect(row).toMatchObject({ status: 499, estimated: 1, prompt_tokens: prompt, completion_tokens: 0, cost_micro_usd: miniCost(prompt, 0) });
    await eventually('the prompt is settled on the key', tokensUsed, (used) => used === before + prompt);
  });
});
