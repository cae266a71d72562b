/**
 * A clean stop loses no usage record: the README promises that SIGTERM (and app.close()) lets calls
 * in flight finish and flushes the usage records (batched in memory, see src/store/recorder.ts)
 * and the limits journal. A real gateway process gets a series of calls (JSON and streamed), the
 * last one still streaming when SIGTERM arrives; after it exits, the database holds one record
 * per call, each with the tokens the upstream reported, and the limits journal counts every call.
 * The same in process: app.close() right after the calls, then a fresh store on the same file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request, type IncomingMessage } from 'node:http';
import { loadConfig } from '../../src/config.js';
import { createApp } from '../../src/app.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { GLOBAL_REQUESTS } from '../../src/limits/rules.js';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { startServerProcess } from '../support/server-process.js';
import { authHeaders, chatBody, PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';

interface Expected {
  requestId: string;
  stream: boolean;
  prompt: number;
  completion: number;
}

interface Row {
  request_id: string;
  principal: string;
  status: number;
  stream: number;
  prompt_tokens: number;
  completion_tokens: number;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ mock: MockOpenAI; dir: string; dbPath: string }> {
  const mock = await startMockOpenAI();
  const dir = tempDir();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => mock.close());
  return { mock, dir, dbPath: join(dir, 'proxygpt.db') };
}

const gatewayEnv = (mock: MockOpenAI, dbPath: string): Record<string, string> => ({
  OPENAI_API_KEY: UPSTREAM_KEY,
  OPENAI_BASE_URL: mock.url,
  PROXYGPT_API_KEY: PROXY_KEY,
  PROXYGPT_DATABASE_URL: dbPath,
  USE_HOURLY_RATE_LIMIT: 'true',
  PROXYGPT_HOURLY_RATE_LIMIT: '1000',
  LOG_LEVEL: 'warn',
});

/**
 * Calls `count` times, alternating JSON and streamed completions, each with its own token counts
 * (the mock reports what the headers ask: for streams, one completion token per chunk).
 */
async function calls(url: string, count: number): Promise<Expected[]> {
  const expected: Expected[] = [];
  for (let i = 0; i < count; i++) {
    const stream = i % 2 === 1;
    const prompt = 11 + i;
    const completion = stream ? 2 + i : 21 + i;
    const headers = { ...authHeaders(), 'x-mock-prompt-tokens': String(prompt), ...(stream ? { 'x-mock-chunks': String(completion) } : { 'x-mock-completion-tokens': String(completion) }) };
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: chatBody(stream ? { stream: true } : {}) });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    if (stream) expect(text).toContain('data: [DONE]');
    expected.push({ requestId: res.headers.get('x-proxygpt-request-id')!, stream, prompt, completion });
  }
  return expected;
}

/**
 * Starts a slow stream (`chunks` chunks, 100 ms apart) and returns once its first bytes arrived.
 * On a connection of its own that closes after the call (a keep-alive connection busy at close
 * time is only cut after the shutdown grace period, which would make this test wait for it).
 */
async function slowStream(url: string, prompt: number, chunks: number): Promise<{ expected: Expected; rest: Promise<string> }> {
  const headers = { ...authHeaders(), 'x-mock-prompt-tokens': String(prompt), 'x-mock-chunks': String(chunks), 'x-mock-chunk-delay-ms': '100' };
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(`${url}/v1/chat/completions`, { method: 'POST', headers, agent: false }, resolve);
    req.on('error', reject);
    req.end(chatBody({ stream: true }));
  });
  expect(res.statusCode).toBe(200);
  res.setEncoding('utf8');
  let text = '';
  const first = new Promise<void>((resolve) => res.once('data', () => resolve()));
  const rest = new Promise<string>((resolve, reject) => {
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
  await first;
  return { expected: { requestId: String(res.headers['x-proxygpt-request-id']), stream: true, prompt, completion: chunks }, rest };
}

function readRows(dbPath: string): { rows: Row[]; requestsCounted: number | undefined } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT request_id, principal, status, stream, prompt_tokens, completion_tokens FROM usage_events ORDER BY id').all() as Row[];
    const series = db.prepare('SELECT cum FROM limit_series WHERE series = ?').get(GLOBAL_REQUESTS) as { cum: number } | undefined;
    return { rows, requestsCounted: series?.cum };
  } finally {
    db.close();
  }
}

function expectRecorded(rows: Row[], expected: Expected[]): void {
  const byId = new Map(rows.map((r) => [r.request_id, r]));
  for (const e of expected) {
    expect(byId.get(e.requestId), `the record of ${e.requestId} (${e.stream ? 'streamed' : 'JSON'})`).toEqual({
      request_id: e.requestId,
      principal: 'env-key-1',
      status: 200,
      stream: e.stream ? 1 : 0,
      prompt_tokens: e.prompt,
      completion_tokens: e.completion,
    });
  }
  expect(rows).toHaveLength(expected.length);
}

describe('SIGTERM to a gateway process', () => {
  it('finishes the call in flight, then writes every usage record and the limits journal before it exits', async () => {
    const { mock, dbPath } = await setup();
    const server = await startServerProcess(gatewayEnv(mock, dbPath));
    cleanups.push(async () => void (await server.stop()));

    const expected = await calls(server.base, 6);
    const inFlight = await slowStream(server.base, 40, 5);
    const exited = server.stop(); // SIGTERM while the stream is still being sent
    const text = await inFlight.rest;
    expect(text).toContain('data: [DONE]');
    expect(text.match(/"delta":\{"content":/g)).toHaveLength(5);
    expect(await exited).toBe(0);

    const { rows, requestsCounted } = readRows(dbPath);
    expectRecorded(rows, [...expected, inFlight.expected]);
    expect(requestsCounted).toBe(7);
    expect(server.stderr()).toBe('');
  });
});

describe('app.close() in process', () => {
  async function startApp(mock: MockOpenAI, dbPath: string) {
    const { config } = loadConfig(gatewayEnv(mock, dbPath));
    const app = await createApp(config);
    await app.server.listen({ port: 0, host: '127.0.0.1' });
    return { app, url: `http://127.0.0.1:${(app.server.server.address() as AddressInfo).port}` };
  }

  function freshStore(dbPath: string): SqliteStore {
    const store = new SqliteStore(openSqlite(dbPath));
    cleanups.push(() => store.close());
    return store;
  }

  it('right after the calls: a fresh store on the same file reads every record', async () => {
    const { mock, dbPath } = await setup();
    const { app, url } = await startApp(mock, dbPath);
    const since = Date.now();
    const expected = await calls(url, 5);
    await app.close();

    const { rows, requestsCounted } = readRows(dbPath);
    expectRecorded(rows, expected);
    expect(requestsCounted).toBe(5);
    const { total } = await freshStore(dbPath).usage({ sinceMs: since - 1000, untilMs: Date.now() + 1000 });
    expect(total).toMatchObject({
      requests: 5,
      promptTokens: expected.reduce((s, e) => s + e.prompt, 0),
      completionTokens: expected.reduce((s, e) => s + e.completion, 0),
      byStatus: { '200': 5 },
    });
  });

  it('while a stream is in flight: the stream finishes and is recorded too', async () => {
    const { mock, dbPath } = await setup();
    const { app, url } = await startApp(mock, dbPath);
    const expected = await calls(url, 2);
    const inFlight = await slowStream(url, 50, 4);
    const closed = app.close();
    expect(await inFlight.rest).toContain('data: [DONE]');
    await closed;

    const { rows, requestsCounted } = readRows(dbPath);
    expectRecorded(rows, [...expected, inFlight.expected]);
    expect(requestsCounted).toBe(3);
  });
});
