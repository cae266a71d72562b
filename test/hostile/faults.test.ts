/**
 * Upstream faults no other test covers (issue 8, "Prove it"; the map of which test covers which
 * fault is in the report), through the mock upstream's x-mock-fault switches, against two
 * gateways: one counting every admitted call (`all`) and one counting only 2xx answers (`success`).
 * For each: the right status and a clear error in OpenAI's shape (or, for a stream already under
 * way, a last error event); the call settled exactly once (each hold committed
 * once, never released), recorded once with the status the client got, and counted as the counting
 * policy says; and the upstream connection closed once the answer is over or the client left.
 * - the connection reset before the headers, or in the middle of them: 502;
 * - a 2xx JSON answer that is not JSON: relayed as it came on /v1 (the prompt billed), 502 on the
 *   legacy route, which must read it;
 * - a stream reset after its first events, and a stream whose next event comes later than
 *   PROXYGPT_UPSTREAM_TIMEOUT_MS: the events so far, then an error event in OpenAI's shape (502's
 *   or 504's code) ends the client's stream (no [DONE]; before, its connection was cut and the
 *   call recorded as a client that left, 499), billed what went out;
 * - an endless error body (through the mock this time): 502 upstream_error_too_large, cut off;
 * - an endless stream the client leaves: the upstream request is aborted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fetch } from 'undici';
import OpenAI from 'openai';
import { PROXY_KEY, type TestGateway } from '../helpers.js';
import { chatRequest, createKey, eventually, rateLimit, startAdminGateway, type CreatedKey } from '../keys/helpers.js';
import { watchLimiter, type LimiterWatch } from '../call/watch-limiter.js';
import { expectGatewayError, type Answer } from './send.js';

interface Target {
  mode: 'all' | 'success';
  gw: TestGateway;
  key: CreatedKey;
  seen: LimiterWatch;
}

const targets: Target[] = [];

beforeAll(async () => {
  for (const mode of ['all', 'success'] as const) {
    const gw = await startAdminGateway({
      PROXYGPT_RATE_LIMIT_COUNT: mode,
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: '1000',
      PROXYGPT_UPSTREAM_TIMEOUT_MS: '300',
      PROXYGPT_LEGACY_MODEL: 'gpt-4o-mini',
    });
    const key = await createKey(gw, { name: `faults-${mode}`, tokens_per_hour: 1_000_000 });
    targets.push({ mode, gw, key, seen: watchLimiter(gw) });
  }
});
afterAll(async () => {
  vi.restoreAllMocks();
  for (const t of targets) await t.gw.close();
});

const CHAT = JSON.stringify(chatRequest());
const STREAM = JSON.stringify(chatRequest({ stream: true }));

async function counts(t: Target) {
  const global = (await rateLimit(t.gw, PROXY_KEY)).body as { hourly_api_usage: number };
  return { requests: global.hourly_api_usage, tokens: (await rateLimit(t.gw, t.key.key)).body.key!.limits.tokens_per_hour!.used };
}

/** Sends one call with the stored key; the body is read to its end (or to where it broke off). */
async function send(t: Target, path: string, body: string, headers: Record<string, string>): Promise<Answer & { broke: boolean }> {
  const res = await fetch(`${t.gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${t.key.key}`, 'content-type': 'application/json', ...headers }, body });
  const out: Record<string, string> = {};
  res.headers.forEach((value, name) => (out[name] = value));
  let text = '';
  let broke = false;
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
  } catch {
    broke = true; // the response broke off before its end
  }
  return { status: res.status, headers: out, body: text, wire: `${res.status}\n${JSON.stringify(out)}\n${text}`, broke };
}

interface Expected {
  status: number;
  code?: string;
  /** Whether the request slot counts: in `all` mode always; in `success` mode only when the upstream answered 2xx. */
  upstream2xx: boolean;
  /** Whether anything (the prompt at least) is billed. */
  billed: boolean;
}

/** Runs `call`, then checks the answer's accounting and that the upstream connection is closed. */
async function settledOnce(t: Target, call: () => Promise<Answer>, expected: Expected): Promise<Answer> {
  t.seen.reset();
  const before = await counts(t);
  const answer = await call();
  expect(answer.status, answer.body.slice(0, 300)).toBe(expected.status);
  if (expected.code !== undefined) expectGatewayError(`${t.mode} ${expected.code}`, answer, { code: expected.code, upstreamFailed: true });
  await eventually('the call is recorded', () => t.seen.records.length, (n) => n >= 1);
  await eventually('the call is settled', () => t.seen.committed.length, (n) => n >= 1);
  expect(t.seen.reserved).toHaveLength(1);
  expect(t.seen.committed).toEqual(t.seen.reserved);
  expect(t.seen.released).toEqual([]);
  expect(t.seen.records).toHaveLength(1);
  const record = t.seen.records[0]!;
  expect(record.status).toBe(expected.status);
  const billed = record.promptTokens + record.completionTokens;
  if (expected.billed) expect(billed).toBeGreaterThan(0);
  else expect(billed).toBe(0);
  const after = await counts(t);
  expect(after.tokens - before.tokens, 'tokens counted are what was billed, nothing left held').toBe(billed);
  expect(after.requests - before.requests, 'request slot').toBe(t.mode === 'all' || expected.upstream2xx ? 1 : 0);
  await eventually('the upstream connection is closed', () => t.gw.mock.inFlight, (n) => n === 0);
  return answer;
}

describe.each(['all', 'success'] as const)('upstream faults, counting %s calls', (mode) => {
  const t = () => targets.find((x) => x.mode === mode)!;

  it.each([
    ['reset before the headers', 'reset-before-headers', '/v1/chat/completions', CHAT],
    ['reset before the headers of a stream', 'reset-before-headers', '/v1/chat/completions', STREAM],
    ['reset in the middle of the headers', 'reset-mid-headers', '/v1/chat/completions', CHAT],
    ['reset in the middle of the headers of a stream', 'reset-mid-headers', '/v1/chat/completions', STREAM],
  ])('%s: 502 upstream_unreachable, nothing billed', async (_what, fault, path, body) => {
    await settledOnce(t(), () => send(t(), path, body, { 'x-mock-fault': fault }), { status: 502, code: 'upstream_unreachable', upstream2xx: false, billed: false });
  });

  it('a 2xx JSON answer that is not JSON: relayed as it came, the prompt billed', async () => {
    const answer = await settledOnce(t(), () => send(t(), '/v1/chat/completions', CHAT, { 'x-mock-fault': 'invalid-json' }), { status: 200, upstream2xx: true, billed: true });
    expect(answer.body).toBe('{"id":"chatcmpl-mock","choices":[{"message": this is not JSON');
    expect(t().seen.records[0]!.estimated).toBe(true);
  });

  /** The error event a stream ends with (its last event), parsed. */
  const lastEvent = (body: string) => JSON.parse(body.trim().split('\n\n').at(-1)!.slice('data: '.length)) as unknown;

  it('a stream reset after its first events: they go on, then an error event (upstream_unreachable); billed what went out', async () => {
    const answer = (await settledOnce(t(), () => send(t(), '/v1/chat/completions', STREAM, { 'x-mock-fault': 'reset-mid-stream' }), {
      status: 200,
      upstream2xx: true,
      billed: true,
    })) as Answer & { broke: boolean };
    expect(answer.body).toContain('"content":"Echo: "');
    expect(answer.body).not.toContain('[DONE]');
    expect(answer.broke, 'the stream ends normally, with the error as its last event').toBe(false);
    expect(lastEvent(answer.body)).toEqual({ error: { message: 'The upstream API broke off its answer.', type: 'api_error', code: 'upstream_unreachable', param: null } });
    expect(t().seen.records[0]!.estimated).toBe(true);
  });

  it('a stream reset mid-way reaches an SDK client as an APIError with that code', async () => {
    t().seen.reset();
    const client = new OpenAI({ baseURL: `${t().gw.url}/v1`, apiKey: t().key.key, maxRetries: 0, defaultHeaders: { 'x-mock-fault': 'reset-mid-stream' } });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi there' }], stream: true });
    const received: string[] = [];
    let failure: unknown = null;
    try {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta?.content ?? '');
    } catch (err) {
      failure = err;
    }
    expect(received.join('')).toBe('Echo: ');
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_unreachable');
    await eventually('the call is settled and recorded', () => t().seen.committed.length + t().seen.records.length, (n) => n === 2);
    await eventually('the upstream connection is closed', () => t().gw.mock.inFlight, (n) => n === 0);
  });

  it('a stream whose next event comes after the upstream timeout: an error event (upstream_timeout), the upstream request closed', async () => {
    const abortedBefore = t().gw.mock.aborted;
    const answer = (await settledOnce(t(), () => send(t(), '/v1/chat/completions', STREAM, { 'x-mock-chunks': '5', 'x-mock-chunk-delay-ms': '1500' }), {
      status: 200,
      upstream2xx: true,
      billed: true,
    })) as Answer & { broke: boolean };
    expect(answer.body).not.toContain('[DONE]');
    expect(answer.broke).toBe(false);
    expect(lastEvent(answer.body)).toEqual({ error: { message: 'The upstream API did not finish its answer in time.', type: 'api_error', code: 'upstream_timeout', param: null } });
    expect(t().gw.mock.aborted).toBe(abortedBefore + 1);
  });

  it('an endless error body: 502 upstream_error_too_large, the upstream cut off', async () => {
    const abortedBefore = t().gw.mock.aborted;
    const answer = await settledOnce(t(), () => send(t(), '/v1/chat/completions', CHAT, { 'x-mock-fault': 'endless-error-body' }), {
      status: 502,
      code: 'upstream_error_too_large',
      upstream2xx: false,
      billed: false,
    });
    expect(answer.body.length).toBeLessThan(1000);
    expect(t().gw.mock.aborted).toBe(abortedBefore + 1);
  });

  it('an endless stream the client leaves: the upstream request is aborted, billed what went out (499)', async () => {
    const target = t();
    target.seen.reset();
    const before = await counts(target);
    const abortedBefore = target.gw.mock.aborted;
    const leaving = new AbortController();
    const res = await fetch(`${target.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.key.key}`, 'content-type': 'application/json', 'x-mock-chunks': '1000000000', 'x-mock-chunk-delay-ms': '5' },
      body: STREAM,
      signal: leaving.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let received = '';
    while (!received.includes('"content":"hi "')) received += new TextDecoder().decode((await reader.read()).value);
    leaving.abort();
    await eventually('the upstream request is aborted', () => target.gw.mock.aborted, (n) => n === abortedBefore + 1);
    await eventually('the call is recorded', () => target.seen.records.length, (n) => n >= 1);
    expect(target.seen.committed).toEqual(target.seen.reserved);
    expect(target.seen.released).toEqual([]);
    const record = target.seen.records[0]!;
    expect(record).toMatchObject({ status: 499, estimated: true });
    expect(record.completionTokens).toBeGreaterThan(0);
    const after = await counts(target);
    expect(after.tokens - before.tokens).toBe(record.promptTokens + record.completionTokens);
    expect(after.requests - before.requests).toBe(1); // the upstream answered 2xx: it counts in both modes
    await eventually('no upstream request left open', () => target.gw.mock.inFlight, (n) => n === 0);
  });
});
