/**
 * GET /admin/upstreams (each upstream and key: state, breaker, last error; a key only as its last
 * 4 characters), and the upstream keys as secrets: every key of every upstream, echoed by the
 * upstreams in bodies, streams, error bodies and headers, never reaches a client, a log line or
 * the admin view, with debug output on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { admin, ADMIN_KEY } from '../keys/helpers.js';
import { chat, KEYS, manualClock, openaiEntry, postChat, refusedUrl, startRoutedGateway, type ManualClock, type RoutedGateway } from './helpers.js';

let a: MockOpenAI;
let azure: MockOpenAI;
let clock: ManualClock;
let gw: RoutedGateway;
let dead: string;
/** Everything the gateway sent back in these tests: status lines, headers, bodies. */
const seen: string[] = [];

async function record(res: Response): Promise<string> {
  const text = await res.text();
  seen.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
  return text;
}

beforeAll(async () => {
  [a, azure] = await Promise.all([startMockOpenAI(), startMockOpenAI()]);
  clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 0));
  dead = await refusedUrl();
  gw = await startRoutedGateway({
    clock,
    file: {
      breaker: { failures: 2, cooldown_ms: 60_000 },
      upstreams: [
        openaiEntry('a', a, { api_key: ['${KEY_A1}', '${KEY_A2}'], models: ['gpt-4o*'] }),
        { name: 'azure', kind: 'azure', base_url: `http://127.0.0.1:${azure.port}`, api_key: '${AZURE_KEY}', api_version: '2024-10-21', models: { 'gpt-4o-mini': 'mini', 'o3-mini': 'o3' }, weight: 0.001 },
        openaiEntry('dead', dead, { api_key: '${KEY_B}', models: ['o3*'], weight: 1000 }),
      ],
    },
    env: { PROXYGPT_ADMIN_KEY: ADMIN_KEY, INSECURE_DEBUG: 'true', LOG_LEVEL: 'trace' },
  });
});
afterAll(async () => {
  await gw.close();
  await Promise.all([a.close(), azure.close()]);
});
afterEach(() => {
  vi.restoreAllMocks();
  a.forced = {};
  azure.forced = {};
});

describe('GET /admin/upstreams', () => {
  it('shows each upstream and key: healthy at first, the key as its last 4 characters', async () => {
    const res = await admin<{ object: string; attempts: number; data: Record<string, unknown>[] }>(gw, 'GET', '/upstreams');
    expect(res.status).toBe(200);
    seen.push(res.text);
    expect(res.body.attempts).toBe(3);
    expect(res.body.data.map((u) => u.name)).toEqual(['a', 'azure', 'dead']);
    expect(res.body.data[0]).toEqual({
      name: 'a',
      kind: 'openai',
      base_url: a.url,
      weight: 1,
      timeout_ms: 600_000,
      models: ['gpt-4o*'],
      keys: [
        { key: `…${KEYS.KEY_A1.slice(-4)}`, source: 'KEY_A1', state: 'healthy', until: null, consecutive_failures: 0, served: 0, failed: 0, last_error: null },
        { key: `…${KEYS.KEY_A2.slice(-4)}`, source: 'KEY_A2', state: 'healthy', until: null, consecutive_failures: 0, served: 0, failed: 0, last_error: null },
      ],
    });
    expect(res.body.data[1]).toMatchObject({ kind: 'azure', base_url: `http://127.0.0.1:${azure.port}`, models: ['gpt-4o-mini', 'o3-mini'] });
  });

  it('an open breaker with its time and the last error (a code, no text from the upstream); a 429 as rate limited', async () => {
    for (let i = 0; i < 2; i++) await record(await postChat(gw, chat('o3-mini')));
    a.forced = { 'x-mock-status': '429', 'x-mock-response-headers': JSON.stringify({ 'retry-after': '30' }) };
    await record(await postChat(gw, chat('gpt-4o-mini')));
    const res = await admin<{ data: { name: string; keys: Record<string, unknown>[] }[] }>(gw, 'GET', '/upstreams');
    seen.push(res.text);
    const byName = Object.fromEntries(res.body.data.map((u) => [u.name, u]));
    expect(byName.dead!.keys[0]).toMatchObject({
      state: 'open',
      until: new Date(clock() + 60_000).toISOString(),
      consecutive_failures: 2,
      failed: 2,
      last_error: { at: new Date(clock()).toISOString(), message: 'upstream_unreachable (ECONNREFUSED)' },
    });
    // Both keys of a answered 429 (a's second key was the next attempt) and sit it out; azure served the call.
    for (const key of byName.a!.keys) expect(key).toMatchObject({ state: 'cooling_down', until: new Date(clock() + 30_000).toISOString(), failed: 1, last_error: { message: 'HTTP 429' } });
    expect(byName.azure!.keys[0]).toMatchObject({ state: 'healthy', served: 3 });
    clock.advance(60_001);
    const later = await admin<{ data: { name: string; keys: { state: string }[] }[] }>(gw, 'GET', '/upstreams');
    expect(later.body.data.find((u) => u.name === 'dead')!.keys[0]!.state).toBe('half_open');
    expect(later.body.data.find((u) => u.name === 'a')!.keys[0]!.state).toBe('healthy');
  });

  it('needs the admin key', async () => {
    expect((await admin(gw, 'GET', '/upstreams', undefined, null)).status).toBe(401);
    expect((await admin(gw, 'GET', '/upstreams', undefined, `Bearer ${KEYS.KEY_A1}`)).status).toBe(401);
  });
});

describe('upstream keys are secrets', () => {
  it('echoed by the upstreams in bodies, streams, errors and headers: never reach the client', async () => {
    const echo = { 'x-mock-echo': '$authorization $api-key', 'x-mock-response-headers': JSON.stringify({ 'x-echo': '$authorization $api-key', 'www-authenticate': 'Bearer $authorization' }) };
    a.forced = echo;
    azure.forced = echo;
    for (const body of [chat('gpt-4o-mini'), chat('gpt-4o-mini', { stream: true }), chat('gpt-4o'), chat('gpt-4o', { stream: true })]) {
      for (let i = 0; i < 2; i++) {
        const text = await record(await postChat(gw, body));
        expect(text).toContain('[REDACTED]');
      }
    }
    // Azure's api-key, echoed in an error body after a failover from a.
    a.forced = { 'x-mock-status': '503' };
    azure.forced = { 'x-mock-status': '500', 'x-mock-echo': 'key $api-key' };
    const text = await record(await postChat(gw, chat('gpt-4o-mini')));
    expect(text).toContain('key [REDACTED]');
  });

  it('an upstream failure quoting a key (INSECURE_DEBUG on): redacted in the 500 and the log', async () => {
    vi.spyOn(gw.app.upstreams.upstreams[1]!.pool, 'send').mockRejectedValueOnce(new Error(`refused with ${KEYS.AZURE_KEY} and ${KEYS.KEY_A2}`));
    a.forced = { 'x-mock-status': '502' };
    const res = await postChat(gw, chat('gpt-4o-mini'));
    const text = await record(res);
    expect(res.status).toBe(500);
    expect(text).toContain('refused with [REDACTED] and [REDACTED]');
  });

  it('none of the keys in anything the gateway sent or logged, raw or encoded', async () => {
    const everything = [...seen, ...gw.logs].join('\n');
    expect(gw.logs.some((l) => l.includes('upstream attempt failed'))).toBe(true);
    for (const key of Object.values(KEYS)) {
      for (const form of [key, encodeURIComponent(key), Buffer.from(key).toString('base64'), Buffer.from(key).toString('hex')]) {
        expect(everything.includes(form), `${key.slice(0, 12)}… as ${form.slice(0, 12)}…`).toBe(false);
      }
    }
  });
});
