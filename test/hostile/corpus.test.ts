/**
 * Runs the hostile-input corpus (corpus.ts) over real HTTP against one real gateway in front of
 * the mock upstream, row by row, and checks what the README promises for each: the status; an
 * answer of the gateway's own is OpenAI-shaped JSON with the row's code, never a 5xx, no stack
 * trace; every answer carries a request id and `nosniff`; a row refused before forwarding reaches
 * neither the upstream nor the limiter (nothing reserved or counted, no usage record; a 429 is a
 * reservation the limiter refused, recorded with nothing counted); a forwarded row reaches the
 * upstream once and is counted once. After the whole corpus the gateway still serves, counted
 * exactly the forwarded rows, and logged no error.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { ADMIN_KEY, createKey, eventually, rateLimit, type CreatedKey } from '../keys/helpers.js';
import { watchLimiter, type LimiterWatch } from '../call/watch-limiter.js';
import { CORPUS, CORPUS_ENV, STORED_KEY_POLICY, type HostileRequest, type KeyKind } from './corpus.js';
import { expectGatewayError, sendFetch, sendRaw, type Answer } from './send.js';

let gw: TestGateway;
let stored: CreatedKey;
let seen: LimiterWatch;
/** Request ids of the rows that were forwarded (must be recorded) and refused by the limiter (recorded with nothing counted). */
const forwardedIds = new Set<string>();
const limiterRefusedIds = new Set<string>();
let errorLogsBefore = 0;

beforeAll(async () => {
  gw = await startGateway({ env: { ...CORPUS_ENV, PROXYGPT_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'warn' } });
  stored = await createKey(gw, STORED_KEY_POLICY);
  seen = watchLimiter(gw);
  errorLogsBefore = errorLines().length;
});
afterAll(async () => {
  vi.restoreAllMocks();
  await gw?.close();
});

const errorLines = () => gw.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);

function keyOf(kind: KeyKind): string | null {
  if (kind === 'env') return PROXY_KEY;
  if (kind === 'stored') return stored.key;
  if (kind === 'admin') return ADMIN_KEY;
  return null;
}

async function send(row: HostileRequest): Promise<Answer> {
  const key = keyOf(row.key);
  if (row.raw !== undefined) {
    const request = row.raw
      .replaceAll('{{AUTH}}', key === null ? '' : 'Authorization: Bearer {{KEY}}\r\n')
      .replaceAll('{{KEY}}', key ?? '')
      .replaceAll('{{ENV_KEY}}', PROXY_KEY);
    return sendRaw(gw.url, request, { head: request.startsWith('HEAD ') });
  }
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (row.body !== undefined && row.contentType !== null) headers['content-type'] = row.contentType ?? 'application/json';
  Object.assign(headers, row.headers);
  const method = row.method ?? (row.body === undefined ? 'GET' : 'POST');
  return sendFetch(`${gw.url}${row.path ?? '/v1/chat/completions'}`, { method, headers, body: row.body });
}

/** Runs one row and checks its answer and what it reached; returns the answer. */
async function check(row: HostileRequest): Promise<Answer> {
  const what = `${row.category}: ${row.name}`;
  const before = { upstream: gw.mock.requests.length, reserved: seen.reserved.length, refused: seen.refused };
  const answer = await send(row);
  expect(answer.status, `${what}: ${answer.body.slice(0, 300)}`).toBe(row.expect.status);
  const id = answer.headers['x-proxygpt-request-id'];
  expect(id, `${what}: no request id`).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
  expect(answer.headers['x-content-type-options'], `${what}: no nosniff`).toBe('nosniff');
  if (row.expect.by === 'upstream') {
    expect(gw.mock.requests.length - before.upstream, `${what}: reached the upstream`).toBe(1);
    expect(seen.reserved.length - before.reserved, `${what}: reserved`).toBe(1);
    forwardedIds.add(id!);
    return answer;
  }
  // An answer to HEAD has no body to check.
  expectGatewayError(what, answer, row.expect, !(row.raw ?? '').startsWith('HEAD '));
  expect(gw.mock.requests.length - before.upstream, `${what}: reached the upstream`).toBe(0);
  expect(seen.reserved.length - before.reserved, `${what}: reserved`).toBe(0);
  if (row.expect.status === 429) {
    expect(seen.refused - before.refused, `${what}: the limiter refused it`).toBe(1);
    limiterRefusedIds.add(id!);
  } else {
    expect(seen.refused - before.refused, `${what}: reached the limiter`).toBe(0);
  }
  return answer;
}

const quick = CORPUS.filter((row) => row.stalls !== true);
const stalling = CORPUS.filter((row) => row.stalls === true);

describe(`the hostile-input corpus (${CORPUS.length} requests)`, () => {
  it('has 100+ rows with unique names, in every category', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(100);
    expect(new Set(CORPUS.map((r) => `${r.category}: ${r.name}`)).size).toBe(CORPUS.length);
    expect(new Set(CORPUS.map((r) => r.category)).size).toBe(13);
  });

  it.each(quick.map((row) => [`${row.category}: ${row.name} → ${row.expect.status}`, row] as const))('%s', async (_name, row) => {
    await check(row);
  });

  // Clients that stop sending: each waits for the request timeout, so they wait together.
  it(`the ${stalling.length} stalling clients get their 408 together`, async () => {
    const before = { upstream: gw.mock.requests.length, reserved: seen.reserved.length, refused: seen.refused };
    const answers = await Promise.all(stalling.map((row) => send(row).then((answer) => [row, answer] as const)));
    for (const [row, answer] of answers) {
      expect(answer.status, row.name).toBe(row.expect.status);
      expectGatewayError(row.name, answer, row.expect);
    }
    expect(gw.mock.requests.length).toBe(before.upstream);
    expect(seen.reserved.length).toBe(before.reserved);
    expect(seen.refused).toBe(before.refused);
  });
});

describe('after the whole corpus', () => {
  it('the gateway still serves: /healthz, and a normal call', async () => {
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
    const ok = await sendFetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"still here"}]}',
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('Echo: still here');
    forwardedIds.add(ok.headers['x-proxygpt-request-id']!);
  });

  it('recorded exactly the forwarded calls (and the limiter refusals, with nothing counted)', async () => {
    const expected = forwardedIds.size + limiterRefusedIds.size;
    await eventually('every call is recorded', () => seen.records.length, (n) => n >= expected);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a wrong extra record would show by now
    const byId = new Map(seen.records.map((r) => [r.requestId, r]));
    expect(seen.records).toHaveLength(expected);
    for (const id of forwardedIds) expect(byId.has(id), `forwarded ${id} recorded`).toBe(true);
    for (const id of limiterRefusedIds) {
      const record = byId.get(id)!;
      expect(record.status).toBe(429);
      expect(record.promptTokens + record.completionTokens + record.costMicroUsd).toBe(0);
    }
  });

  it('counted exactly the forwarded calls; each that held something settled once', async () => {
    expect(seen.reserved).toHaveLength(forwardedIds.size);
    // Environment keys hold nothing in the default counting mode (their reservation id is ''); the
    // stored key holds its estimate, and each hold is committed exactly once, never released.
    const held = seen.reserved.filter((id) => id !== '');
    const storedRecords = seen.records.filter((r) => r.principal === stored.id && r.status !== 429);
    expect(held.length).toBeGreaterThan(20);
    await eventually('every held call is settled', () => seen.committed.length, (n) => n >= held.length);
    expect([...seen.committed].sort()).toEqual([...held].sort());
    expect(seen.released).toEqual([]);
    const global = (await rateLimit(gw, PROXY_KEY)).body as { hourly_api_usage: number };
    expect(global.hourly_api_usage).toBe(forwardedIds.size);
    // The stored key's tokens are what its forwarded calls were billed, nothing of what it was refused.
    const billed = storedRecords.reduce((sum, r) => sum + r.promptTokens + r.completionTokens, 0);
    expect(billed).toBeGreaterThan(0);
    expect((await rateLimit(gw, stored.key)).body.key!.limits.tokens_per_hour!.used).toBe(billed);
  });

  it('logged no error', () => {
    expect(errorLines().slice(errorLogsBefore)).toEqual([]);
  });
});
