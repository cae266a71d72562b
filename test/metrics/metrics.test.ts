/**
 * Issue 10, /metrics in one process: a gateway with an admin key gets a known set of calls (env
 * keys and stored keys; successes with the mock's usage set by header, upstream errors, 429s from
 * three kinds of key limits, a stream, an unknown model, a dated snapshot, a path under a prefix
 * rule, the legacy route, a stream the client leaves), then /metrics is read with the admin key,
 * parsed (prometheus-text.ts) and every figure compared with what this file sent: calls per key,
 * endpoint, model and status, token sums, USD from OpenAI's published prices, 429s per rule, the
 * histograms' counts, the gauges while a call is held and while a stream is open. Also: no secret
 * and no client-chosen name in the text, the access modes (admin, open, off, admin without an
 * admin key), /metrics itself neither counted nor limited, and its place in /docs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { loadConfig, ConfigError } from '../../src/config.js';
import { OTHER_KEY, PROXY_KEY, startGateway, UPSTREAM_KEY, type TestGateway } from '../helpers.js';
import { ADMIN_KEY, call, chatRequest, createKey, eventually, rateLimit, startAdminGateway, type CreatedKey } from '../keys/helpers.js';
import { parseExposition, select, sumOf, valueOf, type Exposition } from './prometheus-text.js';

/** OpenAI's published standard-tier prices, USD per million tokens (input, output). */
const PUBLISHED = { 'gpt-4o-mini': [0.15, 0.6], 'gpt-4o': [2.5, 10] } as const;
/** Micro-dollars of one call (the gateway rounds each call up to a micro-dollar; these are whole). */
const microUsd = (model: keyof typeof PUBLISHED, prompt: number, completion: number) => prompt * PUBLISHED[model][0] + completion * PUBLISHED[model][1];

const CHAT = 'POST /v1/chat/completions';
const MODELS = 'GET /v1/models/*';
const LEGACY = 'POST /api/openai/completions/gpt3';
const UNKNOWN_MODEL = 'my-own-model-7f3a';
const SNAPSHOT = 'gpt-4o-2024-08-06';

interface Scrape {
  status: number;
  headers: Headers;
  text: string;
}

async function scrape(gw: { url: string }, authorization: string | null = `Bearer ${ADMIN_KEY}`, extra: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${gw.url}/metrics`, { headers: { ...(authorization === null ? {} : { authorization }), ...extra } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function exposition(gw: { url: string }): Promise<Exposition> {
  const res = await scrape(gw);
  expect(res.status, res.text).toBe(200);
  return parseExposition(res.text);
}

const usageHeaders = (prompt: number, completion: number) => ({ 'x-mock-prompt-tokens': String(prompt), 'x-mock-completion-tokens': String(completion) });

describe('the Prometheus text reader of these tests', () => {
  it('reads labels with escapes, values and types, and refuses a malformed line', () => {
    const text = ['# HELP a_total A.', '# TYPE a_total counter', 'a_total{k="x \\"q\\" \\\\ \\n",m="y"} 3', 'b 1.5e-3', 'c{le="+Inf"} +Inf', ''].join('\n');
    const parsed = parseExposition(text);
    expect(parsed.types.get('a_total')).toBe('counter');
    expect(parsed.samples).toEqual([
      { name: 'a_total', labels: { k: 'x "q" \\ \n', m: 'y' }, value: 3 },
      { name: 'b', labels: {}, value: 0.0015 },
      { name: 'c', labels: { le: '+Inf' }, value: Infinity },
    ]);
    expect(() => parseExposition('a_total{k="x} 3')).toThrow();
    expect(() => parseExposition('a_total 3 4 5')).toThrow();
    expect(() => parseExposition('a_total{k=x} 3')).toThrow();
  });
});

/** One call this file sent and what it must show in the metrics. */
interface Sent {
  key: string;
  endpoint: string;
  model: string;
  status: number;
  /** Tokens and micro-dollars billed; null: not known to the test (counted by the tokenizer, or the mock's defaults). */
  billed: { prompt: number; completion: number; microUsd: number } | null;
  /** Whether the upstream's response headers came (the upstream histogram observed it). */
  reachedUpstream: boolean;
}

describe('/metrics of one gateway process, checked against the calls sent', () => {
  let gw: TestGateway;
  const sent: Sent[] = [];
  const secrets: string[] = [UPSTREAM_KEY, PROXY_KEY, OTHER_KEY, ADMIN_KEY];
  let whileHeld: Exposition;
  let whileStreaming: Exposition;
  let final: Exposition;
  let finalText: string;

  beforeAll(async () => {
    gw = await startAdminGateway({ PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, GET /v1/models/*' });
    const stored: Record<string, CreatedKey> = {};
    for (const [name, policy] of Object.entries({
      alice: {},
      tight: { requests_per_hour: 2 },
      budget: { tokens_per_day: 100 },
      capped: { max_concurrent: 1 },
      streamer: {},
    })) {
      stored[name] = await createKey(gw, { name, ...policy });
      secrets.push(stored[name]!.key);
    }
    const expectStatus = async (key: string, status: number, options: Parameters<typeof call>[2], record: Omit<Sent, 'status'>) => {
      const res = await call(gw, key, options);
      expect(res.status, res.text).toBe(status);
      sent.push({ ...record, status });
    };
    const billed = (model: keyof typeof PUBLISHED, prompt: number, completion: number) => ({ prompt, completion, microUsd: microUsd(model, prompt, completion) });

    // env-key-1: three successes with known usage.
    for (let i = 0; i < 3; i++) {
      await expectStatus(PROXY_KEY, 200, { headers: usageHeaders(100, 50) }, { key: 'env-key-1', endpoint: CHAT, model: 'gpt-4o-mini', billed: billed('gpt-4o-mini', 100, 50), reachedUpstream: true });
    }
    // env-key-2: a dated snapshot (billed, and counted, as gpt-4o), and upstream errors (no usage: nothing billed).
    for (let i = 0; i < 2; i++) {
      await expectStatus(OTHER_KEY, 200, { body: chatRequest({ model: SNAPSHOT }), headers: usageHeaders(1000, 200) }, { key: 'env-key-2', endpoint: CHAT, model: 'gpt-4o', billed: billed('gpt-4o', 1000, 200), reachedUpstream: true });
    }
    for (let i = 0; i < 2; i++) {
      await expectStatus(OTHER_KEY, 500, { headers: { 'x-mock-status': '500' } }, { key: 'env-key-2', endpoint: CHAT, model: 'gpt-4o-mini', billed: { prompt: 0, completion: 0, microUsd: 0 }, reachedUpstream: true });
    }
    await expectStatus(OTHER_KEY, 400, { headers: { 'x-mock-status': '400' } }, { key: 'env-key-2', endpoint: CHAT, model: 'gpt-4o-mini', billed: { prompt: 0, completion: 0, microUsd: 0 }, reachedUpstream: true });
    // alice: a model the gateway does not know (priced at the fallback, gpt-4o's price), a stream, a prefix rule.
    await expectStatus(stored.alice!.key, 200, { body: chatRequest({ model: UNKNOWN_MODEL }), headers: usageHeaders(10, 5) }, { key: 'alice', endpoint: CHAT, model: 'other', billed: billed('gpt-4o', 10, 5), reachedUpstream: true });
    const stream = await call(gw, stored.alice!.key, { body: chatRequest({ stream: true }), headers: usageHeaders(20, 5) });
    expect(stream.status).toBe(200);
    expect(stream.text).toContain('data: [DONE]');
    sent.push({ key: 'alice', endpoint: CHAT, model: 'gpt-4o-mini', status: 200, billed: billed('gpt-4o-mini', 20, 5), reachedUpstream: true });
    await expectStatus(stored.alice!.key, 200, { method: 'GET', path: '/v1/models/gpt-4o', body: null }, { key: 'alice', endpoint: MODELS, model: 'none', billed: { prompt: 0, completion: 0, microUsd: 0 }, reachedUpstream: true });
    // tight: 2 requests per hour, the third is refused.
    for (let i = 0; i < 2; i++) {
      await expectStatus(stored.tight!.key, 200, { headers: usageHeaders(100, 50) }, { key: 'tight', endpoint: CHAT, model: 'gpt-4o-mini', billed: billed('gpt-4o-mini', 100, 50), reachedUpstream: true });
    }
    await expectStatus(stored.tight!.key, 429, {}, { key: 'tight', endpoint: CHAT, model: 'gpt-4o-mini', billed: null, reachedUpstream: false });
    // budget: 100 tokens a day; a call reserving the default completion budget (1024) cannot fit.
    await expectStatus(stored.budget!.key, 429, {}, { key: 'budget', endpoint: CHAT, model: 'gpt-4o-mini', billed: null, reachedUpstream: false });
    // capped: one call at a time. The first is held upstream while the second is refused.
    const heldBefore = gw.mock.held;
    const held = call(gw, stored.capped!.key, { headers: { 'x-mock-hold': '1', ...usageHeaders(100, 50) } });
    await eventually('the capped call is held upstream', () => gw.mock.held, (n) => n === heldBefore + 1);
    await expectStatus(stored.capped!.key, 429, {}, { key: 'capped', endpoint: CHAT, model: 'gpt-4o-mini', billed: null, reachedUpstream: false });
    whileHeld = await exposition(gw);
    gw.mock.release();
    expect((await held).status).toBe(200);
    sent.push({ key: 'capped', endpoint: CHAT, model: 'gpt-4o-mini', status: 200, billed: billed('gpt-4o-mini', 100, 50), reachedUpstream: true });
    // env-key-1 on the legacy route (the mock's default usage: not checked here).
    const legacy = await fetch(`${gw.url}/api/openai/completions/gpt3`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ role: 'user', content: 'hello' }]),
    });
    expect(legacy.status).toBe(200);
    sent.push({ key: 'env-key-1', endpoint: LEGACY, model: 'gpt-3.5-turbo', status: 200, billed: null, reachedUpstream: true });
    // streamer: a stream that never ends, open while /metrics is read, then left by its client (499).
    const leave = new AbortController();
    const endless = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stored.streamer!.key}`, 'content-type': 'application/json', 'x-mock-endless-event': '10' },
      body: JSON.stringify(chatRequest({ stream: true })),
      signal: leave.signal,
    });
    expect(endless.status).toBe(200);
    const reader = endless.body!.getReader();
    await reader.read();
    await eventually('the stream is relayed', () => gw.mock.inFlight, (n) => n === 1);
    whileStreaming = await exposition(gw);
    leave.abort();
    await reader.read().catch(() => undefined);
    sent.push({ key: 'streamer', endpoint: CHAT, model: 'gpt-4o-mini', status: 499, billed: null, reachedUpstream: true });

    // Every call is counted once it is over and settled: wait for the last one, then read for good.
    await eventually(
      `all ${sent.length} calls are counted and none is open`,
      () => exposition(gw),
      (e) => sumOf(e, 'proxygpt_requests_total') === sent.length && valueOf(e, 'proxygpt_inflight_requests', {}) === 0,
    );
    // Scrapes, refused scrapes among them, are not counted as calls.
    for (const auth of [null, 'Bearer wrong-admin-key-0123456789', `Bearer ${PROXY_KEY}`, `Bearer ${ADMIN_KEY}`]) await scrape(gw, auth);
    const last = await scrape(gw);
    expect(last.status).toBe(200);
    finalText = last.text;
    final = parseExposition(finalText);
  }, 60_000);
  afterAll(async () => gw?.close());

  const groups = <K extends string>(keyOf: (s: Sent) => K) => {
    const map = new Map<K, Sent[]>();
    for (const s of sent) map.set(keyOf(s), [...(map.get(keyOf(s)) ?? []), s]);
    return [...map.values()];
  };

  it('counts every call by key name, endpoint, model and status, and nothing else', () => {
    const byLabels = groups((s) => `${s.key} ${s.endpoint} ${s.model} ${s.status}`);
    expect(byLabels.length).toBeGreaterThan(10);
    for (const group of byLabels) {
      const { key, endpoint, model, status } = group[0]!;
      expect(valueOf(final, 'proxygpt_requests_total', { key, endpoint, model, status: String(status) }), `${key} ${endpoint} ${model} ${status}`).toBe(group.length);
    }
    // No other series: the scrapes and the refused scrapes above are not calls.
    expect(select(final, 'proxygpt_requests_total')).toHaveLength(byLabels.length);
    expect(sumOf(final, 'proxygpt_requests_total')).toBe(sent.length);
    expect(select(final, 'proxygpt_requests_total').filter((s) => s.labels.endpoint!.includes('metrics'))).toEqual([]);
    expect(final.types.get('proxygpt_requests_total')).toBe('counter');
  });

  it('sums the tokens and the USD billed per key and model, from the published prices', () => {
    const byKeyModel = groups((s) => `${s.key} ${s.model}`).filter((g) => g.every((s) => s.billed !== null || s.status === 429));
    expect(byKeyModel.length).toBeGreaterThanOrEqual(6);
    for (const group of byKeyModel) {
      const { key, model } = group[0]!;
      const billed = group.map((s) => s.billed ?? { prompt: 0, completion: 0, microUsd: 0 });
      const sum = (f: (b: (typeof billed)[number]) => number) => billed.reduce((total, b) => total + f(b), 0);
      if (group.every((s) => s.status === 429)) {
        // Refused before anything was billed: no token or cost series at all.
        expect(select(final, 'proxygpt_tokens_total', { key, model }), `${key} ${model}`).toEqual([]);
        continue;
      }
      expect(valueOf(final, 'proxygpt_tokens_total', { key, model, type: 'prompt' }), `${key} ${model} prompt`).toBe(sum((b) => b.prompt));
      expect(valueOf(final, 'proxygpt_tokens_total', { key, model, type: 'completion' }), `${key} ${model} completion`).toBe(sum((b) => b.completion));
      expect(valueOf(final, 'proxygpt_cost_usd_total', { key, model }), `${key} ${model} USD`).toBeCloseTo(sum((b) => b.microUsd) / 1e6, 12);
    }
    // The figures themselves, once by hand: 3 × (100 × 0.15 + 50 × 0.6) µ$ and 2 × (1000 × 2.5 + 200 × 10) µ$.
    expect(valueOf(final, 'proxygpt_cost_usd_total', { key: 'env-key-1', model: 'gpt-4o-mini' })).toBeCloseTo(0.000135, 12);
    expect(valueOf(final, 'proxygpt_cost_usd_total', { key: 'env-key-2', model: 'gpt-4o' })).toBeCloseTo(0.009, 12);
    expect(valueOf(final, 'proxygpt_tokens_total', { key: 'env-key-2', model: 'gpt-4o', type: 'prompt' })).toBe(2000);
    expect(final.types.get('proxygpt_tokens_total')).toBe('counter');
    expect(final.types.get('proxygpt_cost_usd_total')).toBe('counter');
  });

  it('counts 429s by the rule that refused them', () => {
    expect(valueOf(final, 'proxygpt_rate_limited_total', { limit: 'key_requests_per_hour' })).toBe(1);
    expect(valueOf(final, 'proxygpt_rate_limited_total', { limit: 'key_tokens_per_day' })).toBe(1);
    expect(valueOf(final, 'proxygpt_rate_limited_total', { limit: 'key_concurrent' })).toBe(1);
    expect(sumOf(final, 'proxygpt_rate_limited_total')).toBe(sent.filter((s) => s.status === 429).length);
  });

  it('has a request histogram per endpoint counting every call, and an upstream one counting those the upstream answered', () => {
    for (const group of groups((s) => s.endpoint)) {
      const endpoint = group[0]!.endpoint;
      for (const [name, count] of [
        ['proxygpt_request_duration_seconds', group.length],
        ['proxygpt_upstream_duration_seconds', group.filter((s) => s.reachedUpstream).length],
      ] as const) {
        expect(valueOf(final, `${name}_count`, { endpoint }), `${name} ${endpoint}`).toBe(count);
        const buckets = select(final, `${name}_bucket`, { endpoint });
        expect(buckets.length).toBeGreaterThan(5);
        const counts = buckets.map((b) => b.value);
        expect(counts, 'cumulative').toEqual([...counts].sort((a, b) => a - b));
        expect(buckets.at(-1)).toMatchObject({ labels: { le: '+Inf' }, value: count });
        expect(valueOf(final, `${name}_sum`, { endpoint })).toBeGreaterThan(0);
      }
      expect(final.types.get('proxygpt_request_duration_seconds')).toBe('histogram');
    }
    // The held call waited upstream; every request histogram sample is at least as long as its upstream one.
    expect(valueOf(final, 'proxygpt_request_duration_seconds_sum', { endpoint: CHAT })!).toBeGreaterThanOrEqual(valueOf(final, 'proxygpt_upstream_duration_seconds_sum', { endpoint: CHAT })!);
  });

  it('shows the calls in flight and the streams open, as gauges', () => {
    expect(whileHeld.types.get('proxygpt_inflight_requests')).toBe('gauge');
    expect(valueOf(whileHeld, 'proxygpt_inflight_requests', {})).toBe(1);
    expect(valueOf(whileHeld, 'proxygpt_open_streams', {})).toBe(0);
    expect(valueOf(whileStreaming, 'proxygpt_inflight_requests', {})).toBe(1);
    expect(valueOf(whileStreaming, 'proxygpt_open_streams', {})).toBe(1);
    expect(valueOf(final, 'proxygpt_inflight_requests', {})).toBe(0);
    expect(valueOf(final, 'proxygpt_open_streams', {})).toBe(0);
  });

  it("includes prom-client's default process metrics", () => {
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(select(final, name), name).toHaveLength(1);
    }
    expect(select(final, 'nodejs_version_info')[0]?.labels.version).toBe(process.version);
  });

  it('holds no secret and no name a client chose: unknown models are `other`, paths are route rules', () => {
    for (const secret of secrets) expect(finalText.includes(secret), 'a secret in /metrics').toBe(false);
    expect(finalText).not.toContain(UNKNOWN_MODEL);
    expect(finalText).not.toContain(SNAPSHOT);
    expect(finalText).not.toContain('/v1/models/gpt-4o');
    const models = new Set(select(final, 'proxygpt_requests_total').map((s) => s.labels.model));
    expect([...models].sort()).toEqual(['gpt-3.5-turbo', 'gpt-4o', 'gpt-4o-mini', 'none', 'other']);
    const endpoints = new Set(select(final, 'proxygpt_requests_total').map((s) => s.labels.endpoint));
    expect([...endpoints].sort()).toEqual([CHAT, LEGACY, MODELS].sort());
  });

  it('answers with the Prometheus content type; without the admin key, 401 in the error shape', async () => {
    const ok = await scrape(gw);
    expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const auth of [null, 'Bearer wrong-admin-key-0123456789', `Bearer ${PROXY_KEY}`, `Basic ${ADMIN_KEY}`, ADMIN_KEY]) {
      const res = await scrape(gw, auth);
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error' } });
      expect(res.text).not.toContain(ADMIN_KEY);
    }
    // The admin key twice is no admin key (readers disagree on which copy counts).
    const twice = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/metrics`, { headers: ['host', new URL(gw.url).host, 'authorization', `Bearer ${ADMIN_KEY}`, 'authorization', `Bearer ${ADMIN_KEY}`] }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(twice).toBe(401);
  });

  it('is documented in /docs under the admin key, not the proxy key', async () => {
    const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: unknown; tags?: string[] }>> };
    expect(doc.paths['/metrics']?.get).toMatchObject({ security: [{ adminKey: [] }], tags: ['Gateway'] });
  });
});

describe('PROXYGPT_METRICS=open: anyone may read; /metrics is not limited', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { PROXYGPT_METRICS: 'open', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '1', LOG_LEVEL: 'warn' } });
  });
  afterAll(async () => gw?.close());

  it('counts the global hourly refusal, answers without a key, and keeps answering past the limit', async () => {
    expect((await call(gw, PROXY_KEY)).status).toBe(200);
    expect((await call(gw, OTHER_KEY)).status).toBe(429);
    let last: Exposition | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await scrape(gw, null);
      expect(res.status).toBe(200);
      last = parseExposition(res.text);
    }
    expect(valueOf(last!, 'proxygpt_rate_limited_total', { limit: 'hourly' })).toBe(1);
    await eventually('both calls counted', () => exposition(gw), (e) => sumOf(e, 'proxygpt_requests_total') === 2);
    const e = await exposition(gw);
    expect(valueOf(e, 'proxygpt_requests_total', { key: 'env-key-1', endpoint: CHAT, model: 'gpt-4o-mini', status: '200' })).toBe(1);
    expect(valueOf(e, 'proxygpt_requests_total', { key: 'env-key-2', endpoint: CHAT, model: 'gpt-4o-mini', status: '429' })).toBe(1);
    // The scrapes took nothing from the window: it still holds the one admitted call.
    expect((await rateLimit(gw, PROXY_KEY)).body).toMatchObject({ hourly_api_usage: 1 });
  });

  it('is documented without any security scheme', async () => {
    const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: unknown }>> };
    expect(doc.paths['/metrics']?.get?.security).toEqual([]);
  });
});

describe('/metrics answers 404 when it is off', () => {
  const notFound = async (gw: TestGateway, authorization: string | null) => {
    const res = await scrape(gw, authorization);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'not_found' } });
    const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(doc.paths['/metrics']).toBeUndefined();
  };

  it('PROXYGPT_METRICS=off, even with the admin key', async () => {
    const gw = await startAdminGateway({ PROXYGPT_METRICS: 'off' });
    try {
      expect((await call(gw, PROXY_KEY)).status).toBe(200);
      await notFound(gw, `Bearer ${ADMIN_KEY}`);
    } finally {
      await gw.close();
    }
  });

  it('the default (admin) without an admin key, like the admin API', async () => {
    const gw = await startGateway({ env: { LOG_LEVEL: 'warn' } });
    try {
      await notFound(gw, null);
      await notFound(gw, `Bearer ${PROXY_KEY}`);
    } finally {
      await gw.close();
    }
  });
});

describe('PROXYGPT_METRICS in the configuration', () => {
  const base = { OPENAI_API_KEY: UPSTREAM_KEY, PROXYGPT_API_KEY: PROXY_KEY };

  it('is admin by default and takes admin, open and off in any case', () => {
    expect(loadConfig(base).config.metrics).toBe('admin');
    expect(loadConfig({ ...base, PROXYGPT_METRICS: ' Open ' }).config.metrics).toBe('open');
    expect(loadConfig({ ...base, PROXYGPT_METRICS: 'OFF' }).config.metrics).toBe('off');
    expect(loadConfig({ ...base, PROXYGPT_METRICS: 'admin', PROXYGPT_ADMIN_KEY: ADMIN_KEY }).warnings).toEqual([]);
  });

  it('refuses anything else, naming the variable; warns when admin is asked for without an admin key', () => {
    for (const value of ['on', 'true', 'public', 'admin,open']) {
      let thrown: unknown;
      try {
        loadConfig({ ...base, PROXYGPT_METRICS: value });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, value).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).variable).toBe('PROXYGPT_METRICS');
    }
    expect(loadConfig({ ...base, PROXYGPT_METRICS: 'admin' }).warnings.join('\n')).toMatch(/PROXYGPT_METRICS=admin needs PROXYGPT_ADMIN_KEY/);
  });
});
