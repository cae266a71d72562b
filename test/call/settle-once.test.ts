/**
 * The request path's invariant, over HTTP: every call that reached admission is settled exactly
 * once (one limiter commit for its reservation, never a release next to it) and recorded exactly
 * once, whichever way it ends: 2xx JSON (whole and tapped), a complete SSE stream, a client that
 * leaves mid-stream, before the headers or while its call is being admitted (then nothing goes
 * upstream and nothing is billed), an upstream error status, an unreachable upstream
 * (502), a timed-out one (504), a body the upstream cuts short (JSON: 502, and SSE) or stops
 * sending (JSON: 504; also on the legacy route), an error thrown
 * inside the relay, the legacy route (also when it throws after settling), and a call the
 * limiter refuses (recorded once, nothing to commit).
 *
 * Every gateway here counts only successes (PROXYGPT_RATE_LIMIT_COUNT=success), so each admitted
 * call holds its request slot and must commit it: the limiter's commit is the observable settle.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch } from 'undici';
import type { UsageRecord } from '../../src/contract.js';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { freePort } from '../support/server-process.js';
import { watchLimiter, type LimiterWatch } from './watch-limiter.js';
import { chatRequest, createKey, eventually, openDb, startAdminGateway, type CreatedKey } from '../keys/helpers.js';

const SUCCESS_MODE = { PROXYGPT_RATE_LIMIT_COUNT: 'success', USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: '100000' };

/** How the scripted upstream answers the next request. */
type Script = 'json-cut' | 'json-stall' | 'sse-cut' | 'no-message' | 'hang';

let gw: TestGateway; // the mock upstream
let local: TestGateway; // the scripted upstream below, 300 ms upstream timeout
let down: TestGateway; // an upstream nothing listens on
let scripted: Server;
let next: Script = 'hang';
let key: CreatedKey;
let watches: Map<TestGateway, LimiterWatch>;
let agent: Agent;
/** Every call made, for the final check across all of them. */
const allCalls: { gw: TestGateway; admitted: boolean }[] = [];

beforeAll(async () => {
  scripted = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (next === 'hang') return;
      if (next === 'no-message') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end('{"choices": []}');
      }
      if (next === 'json-cut' || next === 'json-stall') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"id":"chatcmpl-cut","choices":[');
        if (next === 'json-stall') return; // the rest never comes
      } else {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[{"index":0,"delta":{"content":"half "}}]}\n\n');
      }
      setTimeout(() => res.socket?.destroy(), 20);
    });
  });
  await new Promise<void>((resolve) => scripted.listen(0, '127.0.0.1', resolve));
  const scriptedUrl = `http://127.0.0.1:${(scripted.address() as AddressInfo).port}/v1`;
  [gw, local, down] = await Promise.all([
    startAdminGateway(SUCCESS_MODE),
    startGateway({ env: { ...SUCCESS_MODE, OPENAI_BASE_URL: scriptedUrl, PROXYGPT_UPSTREAM_TIMEOUT_MS: '300', LOG_LEVEL: 'warn' } }),
    startGateway({ env: { ...SUCCESS_MODE, OPENAI_BASE_URL: `http://127.0.0.1:${await freePort()}/v1`, LOG_LEVEL: 'warn' } }),
  ]);
  key = await createKey(gw, { name: 'metered', tokens_per_hour: 1_000_000_000 });
  watches = new Map([gw, local, down].map((g) => [g, watchLimiter(g)]));
  agent = new Agent();
});

afterAll(async () => {
  vi.restoreAllMocks();
  await agent?.destroy();
  await Promise.all([gw, local, down].map((g) => g?.close()));
  scripted?.closeAllConnections();
  await new Promise<void>((resolve) => scripted?.close(() => resolve()));
});

const post = (target: TestGateway, path: string, body: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${target.url}${path}`, { method: 'POST', headers: { ...authHeaders(target === gw ? key.key : PROXY_KEY), ...headers }, body, signal, dispatcher: agent });

const chat = (target: TestGateway, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
  post(target, '/v1/chat/completions', JSON.stringify(chatRequest(extra)), headers);

const legacy = (target: TestGateway) => post(target, '/api/openai/completions/gpt3', '[{"role":"user","content":"old style"}]');

/**
 * Runs one way a call can end, then checks that it was settled and recorded exactly once (or,
 * refused, recorded once with nothing to commit). Returns the one record.
 */
async function endsOnce(target: TestGateway, run: () => Promise<void>, admitted = true): Promise<UsageRecord> {
  const seen = watches.get(target)!;
  seen.reset();
  await run();
  allCalls.push({ gw: target, admitted });
  await eventually('the call is recorded', () => seen.records.length, (n) => n >= 1, 10_000);
  if (admitted) await eventually('the call is settled', () => seen.committed.length, (n) => n >= 1, 10_000);
  if (target !== down) await eventually('the upstream is done with it', () => (target === gw ? gw.mock.inFlight : 0), (n) => n === 0);
  expect(seen.records).toHaveLength(1);
  expect(seen.reserved).toHaveLength(admitted ? 1 : 0);
  expect(seen.refused).toBe(admitted ? 0 : 1);
  expect(seen.committed).toEqual(seen.reserved);
  expect(seen.released).toEqual([]);
  return seen.records[0]!;
}

describe('every call after admission is settled and recorded exactly once', () => {
  it('2xx JSON, read whole', async () => {
    const record = await endsOnce(gw, async () => {
      const res = await chat(gw);
      expect(res.status).toBe(200);
      await res.text();
    });
    expect(record).toMatchObject({ status: 200, principal: key.id, estimated: false });
  });

  it('2xx JSON over 1 MiB, through the tap', async () => {
    const record = await endsOnce(gw, async () => {
      const res = await chat(gw, {}, { messages: [{ role: 'user', content: 'word '.repeat(230_000) }] });
      expect(res.status).toBe(200);
      expect(Number(res.headers.get('content-length'))).toBeGreaterThan(1024 * 1024);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(1024 * 1024);
    });
    expect(record).toMatchObject({ status: 200, estimated: false });
  });

  it('a complete SSE stream', async () => {
    const record = await endsOnce(gw, async () => {
      const res = await chat(gw, {}, { stream: true });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('data: [DONE]');
    });
    expect(record).toMatchObject({ status: 200, stream: true });
  });

  it('a client that leaves mid-stream', async () => {
    const record = await endsOnce(gw, async () => {
      const controller = new AbortController();
      const res = await post(gw, '/v1/chat/completions', JSON.stringify(chatRequest({ stream: true })), { 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '50' }, controller.signal);
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
      await reader.read().catch(() => undefined);
      await eventually('the upstream request is aborted', () => gw.mock.inFlight, (n) => n === 0);
    });
    expect(record).toMatchObject({ status: 499, stream: true, estimated: true });
  });

  it('a client that leaves before the response headers', async () => {
    const record = await endsOnce(gw, async () => {
      gw.mock.reset();
      const controller = new AbortController();
      const pending = post(gw, '/v1/chat/completions', JSON.stringify(chatRequest()), { 'x-mock-delay-ms': '10000' }, controller.signal);
      await eventually('the upstream has the request', () => gw.mock.requests.length, (n) => n === 1);
      controller.abort();
      await pending.catch(() => undefined);
    });
    expect(record.status).toBe(499);
    expect(record.promptTokens).toBeGreaterThan(0);
  });

  it('a client that leaves while its call is being admitted: nothing goes upstream, nothing is billed', async () => {
    const connections = () => new Promise<number>((resolve, reject) => gw.app.server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const record = await endsOnce(gw, async () => {
      gw.mock.reset();
      const own = new Agent();
      const others = await connections(); // kept-alive connections of the earlier calls
      try {
        const controller = new AbortController();
        let admitting!: () => void;
        const reached = new Promise<void>((resolve) => (admitting = resolve));
        // The reservation waits until the gateway has seen the client's connection close.
        watches.get(gw)!.gate = async () => {
          admitting();
          await eventually('the client connection is closed', connections, (n) => n === others);
        };
        const pending = fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: authHeaders(key.key),
          body: JSON.stringify(chatRequest()),
          signal: controller.signal,
          dispatcher: own,
        });
        await reached;
        controller.abort();
        await pending.catch(() => undefined);
      } finally {
        await own.destroy();
      }
    });
    expect(record).toMatchObject({ status: 499, promptTokens: 0, completionTokens: 0 });
    expect(gw.mock.requests).toHaveLength(0);
  });

  it('an upstream error status', async () => {
    const record = await endsOnce(gw, async () => {
      const res = await chat(gw, { 'x-mock-status': '500' });
      expect(res.status).toBe(500);
      await res.text();
    });
    expect(record).toMatchObject({ status: 500, promptTokens: 0, completionTokens: 0 });
  });

  it('an unreachable upstream (502)', async () => {
    const record = await endsOnce(down, async () => {
      const res = await post(down, '/v1/chat/completions', chatBody());
      expect(res.status).toBe(502);
      await res.text();
    });
    expect(record.status).toBe(502);
  });

  it('an upstream that does not answer in time (504)', async () => {
    next = 'hang';
    const record = await endsOnce(local, async () => {
      const res = await post(local, '/v1/chat/completions', chatBody());
      expect(res.status).toBe(504);
      await res.text();
    });
    expect(record.status).toBe(504);
  });

  it('a JSON body the upstream cuts short (502, as a reset before the headers)', async () => {
    next = 'json-cut';
    const record = await endsOnce(local, async () => {
      const res = await post(local, '/v1/chat/completions', chatBody());
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upstream_unreachable');
    });
    expect(record.status).toBe(502);
    expect(record.promptTokens).toBeGreaterThan(0); // the upstream accepted the prompt: it is billed
  });

  it('a JSON body that stops coming (504 past the upstream timeout)', async () => {
    next = 'json-stall';
    const record = await endsOnce(local, async () => {
      const res = await post(local, '/v1/chat/completions', chatBody());
      expect(res.status).toBe(504);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upstream_timeout');
    });
    expect(record.status).toBe(504);
    expect(record.promptTokens).toBeGreaterThan(0);
  });

  for (const [script, status] of [['json-cut', 502], ['json-stall', 504]] as const) {
    it(`the legacy route, its answer ${script === 'json-cut' ? 'cut short' : 'stalled'} mid-body (${status})`, async () => {
      next = script;
      const record = await endsOnce(local, async () => {
        const res = await legacy(local);
        expect(res.status).toBe(status);
        await res.text();
      });
      expect(record).toMatchObject({ status, path: '/api/openai/completions/gpt3' });
      expect(record.promptTokens).toBeGreaterThan(0);
    });
  }

  it('an SSE stream the upstream cuts short', async () => {
    next = 'sse-cut';
    await endsOnce(local, async () => {
      const res = await post(local, '/v1/chat/completions', chatBody({ stream: true }));
      expect(res.status).toBe(200);
      await res.text().catch(() => undefined);
    });
  });

  it('an error thrown inside the relay', async () => {
    const pool = gw.app.upstreamPool;
    const send = pool.send.bind(pool);
    const failingHeaders = {
      ownKeys(): never {
        throw new Error('headers exploded');
      },
    };
    vi.spyOn(pool, 'send').mockImplementationOnce(async (request) => {
      const response = await send(request);
      return { ...response, headers: new Proxy(response.headers, failingHeaders) };
    });
    const record = await endsOnce(gw, async () => {
      const res = await chat(gw);
      expect(res.status).toBe(500);
      await res.text();
    });
    expect(record.status).toBe(500);
  });

  it('the legacy route', async () => {
    const record = await endsOnce(gw, async () => {
      const res = await legacy(gw);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ message: 'Echo: old style' });
    });
    expect(record).toMatchObject({ status: 200, path: '/api/openai/completions/gpt3' });
  });

  it('the legacy route throwing after it settled (a 200 without an assistant message)', async () => {
    next = 'no-message';
    const record = await endsOnce(local, async () => {
      const res = await legacy(local);
      expect(res.status).toBe(502);
      await res.text();
    });
    expect(record.status).toBe(502);
  });

  it('a call the limiter refuses: recorded once, nothing reserved to settle', async () => {
    const tight = await createKey(gw, { name: 'tight', requests_per_hour: 1 });
    const first = await post(gw, '/v1/chat/completions', JSON.stringify(chatRequest()), { authorization: `Bearer ${tight.key}` });
    expect(first.status).toBe(200);
    await first.text();
    await eventually('the first call is recorded', () => watches.get(gw)!.records.length, (n) => n >= 1);
    allCalls.push({ gw, admitted: true });
    const record = await endsOnce(
      gw,
      async () => {
        const res = await post(gw, '/v1/chat/completions', JSON.stringify(chatRequest()), { authorization: `Bearer ${tight.key}` });
        expect(res.status).toBe(429);
        await res.text();
      },
      false,
    );
    expect(record).toMatchObject({ status: 429, principal: tight.id });
  });
});

describe('across all of those calls', () => {
  it('each usage record is in the database once, one per call', async () => {
    for (const target of [gw, local, down]) {
      const calls = allCalls.filter((c) => c.gw === target).length;
      await target.app.recorder.flush();
      const db = openDb(target);
      try {
        const rows = db.prepare('SELECT request_id, COUNT(*) AS n FROM usage_events GROUP BY request_id').all() as { request_id: string; n: number }[];
        expect(rows).toHaveLength(calls);
        expect(rows.every((r) => r.n === 1)).toBe(true);
      } finally {
        db.close();
      }
    }
  });
});
