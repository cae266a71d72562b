/**
 * An upstream stream whose event never ends (the mock's x-mock-endless-event: 64 KiB every 5 ms,
 * no blank line), over HTTP: the client gets the events complete before it, then an
 * OpenAI-shaped error event (`upstream_event_too_large`), and its stream ends normally; the
 * upstream request is aborted (the mock sees its connection closed); the call is settled once
 * (one limiter commit, no release, one usage record) and billed what was delivered: the prompt
 * and the text of the events that went out, counted with the tokenizer. With the official SDK the
 * error event surfaces as an APIError. The expected counts come from the tokenizer library itself
 * (o200k_base, plus OpenAI's 4 tokens per chat message and 3 for the reply).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import OpenAI from 'openai';
import { fetch } from 'undici';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import type { TestGateway } from '../helpers.js';
import { chatRequest, createKey, eventually, usageRows, startAdminGateway, type CreatedKey } from '../keys/helpers.js';

let gw: TestGateway;
let key: CreatedKey;
const committed: string[] = [];
const released: string[] = [];
let recorded = 0;

const PROMPT = 'tell me everything';
const ENDLESS = { 'x-mock-endless-event': String(64 * 1024), 'x-mock-chunk-delay-ms': '5' };

beforeAll(async () => {
  gw = await startAdminGateway({ PROXYGPT_RATE_LIMIT_COUNT: 'success', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '1000' });
  key = await createKey(gw, { name: 'endless', tokens_per_hour: 1_000_000 });
  const { limiter, recorder } = gw.app;
  const commit = limiter.commit.bind(limiter);
  vi.spyOn(limiter, 'commit').mockImplementation(async (reservation, actual) => {
    committed.push(reservation.id);
    return commit(reservation, actual);
  });
  const release = limiter.release.bind(limiter);
  vi.spyOn(limiter, 'release').mockImplementation(async (reservation) => {
    released.push(reservation.id);
    return release(reservation);
  });
  const record = recorder.record.bind(recorder);
  vi.spyOn(recorder, 'record').mockImplementation((r) => {
    recorded++;
    record(r);
  });
});
afterAll(async () => {
  vi.restoreAllMocks();
  await gw?.close();
});
beforeEach(() => {
  gw.mock.reset();
  committed.length = 0;
  released.length = 0;
  recorded = 0;
});

/** The call is over on both sides: upstream aborted, settled and recorded once. */
async function expectEndedOnce(): Promise<void> {
  await eventually('the upstream request is aborted', () => gw.mock.aborted, (n) => n === 1);
  await eventually('nothing is left in flight upstream', () => gw.mock.inFlight, (n) => n === 0);
  await eventually('the call is recorded', () => recorded, (n) => n >= 1);
  await new Promise((resolve) => setTimeout(resolve, 50)); // a second settle or record would come now
  expect(committed).toHaveLength(1);
  expect(released).toEqual([]);
  expect(recorded).toBe(1);
}

describe('an SSE event that never ends', () => {
  let records = 0;

  it('ends the client stream with an error event, aborts the upstream, settles once, bills what was delivered', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', ...ENDLESS },
      body: JSON.stringify(chatRequest({ stream: true, messages: [{ role: 'user', content: PROMPT }] })),
    });
    expect(res.status).toBe(200);
    const text = await res.text(); // resolves: the stream ended normally, not cut
    const events = text.split('\n\n').filter((e) => e.length > 0);
    expect(events.length).toBe(3);
    expect(JSON.parse(events[1]!.slice('data: '.length))).toMatchObject({ choices: [{ delta: { content: 'Echo: ' } }] });
    expect(JSON.parse(events[2]!.slice('data: '.length))).toEqual({
      error: { message: expect.stringContaining('1 MiB'), type: 'api_error', code: 'upstream_event_too_large', param: null },
    });
    expect(text.length).toBeLessThan(10_000); // none of the endless event went out
    await expectEndedOnce();

    const [row] = (await usageRows(gw, key.id, ++records)).slice(-1);
    expect(row).toMatchObject({
      status: 200,
      stream: 1,
      estimated: 1,
      prompt_tokens: encode(PROMPT).length + 4 + 3,
      completion_tokens: encode('Echo: ').length,
    });
  });

  it('reaches an SDK client as an APIError', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key.key, maxRetries: 0, defaultHeaders: ENDLESS });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }], stream: true });
    const received: string[] = [];
    let failure: unknown = null;
    try {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta?.content ?? '');
    } catch (err) {
      failure = err;
    }
    expect(received.join('')).toBe('Echo: ');
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_event_too_large');
    await expectEndedOnce();
    records++;
  });
});
