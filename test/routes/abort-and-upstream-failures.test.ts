/**
 * Failures on either side of the gateway: a client that goes away (mid-stream or before the
 * upstream answered) makes the gateway abort its upstream request, an unreachable upstream is a
 * 502, a slow one a 504 — and the gateway keeps serving afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import OpenAI from 'openai';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { freePort } from '../support/server-process.js';

/** Polls `condition` every 10 ms for at most `ms`; fails with `what` if it never holds. */
async function eventually(what: string, condition: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A port nothing listens on (one that was free a moment ago). */
const closedPort = freePort;

async function expectServesNormally(gw: TestGateway): Promise<void> {
  const client = new OpenAI({ apiKey: PROXY_KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const completion = await client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still here' }] },
    { headers: { 'x-mock-delay-ms': '0' } },
  );
  expect(completion.choices[0]?.message.content).toBe('Echo: still here');
  const legacy = await fetch(`${gw.url}/api/openai/completions/gpt3`, { method: 'POST', headers: authHeaders(), body: '[{"role":"user","content":"ok"}]' });
  expect(await legacy.json()).toEqual({ message: 'Echo: ok' });
}

interface ErrorJson {
  error: { message: string; type: string; code: string | null; param: string | null };
}

describe('client aborts', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  it('aborts the upstream request when the client goes away mid-stream', async () => {
    gw.mock.reset();
    const controller = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '50' },
      body: chatBody({ stream: true }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('data: ');
    expect(gw.mock.inFlight).toBe(1);
    controller.abort();
    await reader.read().catch(() => undefined);

    // 50 chunks × 50 ms = 2.5 s of stream left: the upstream sees the abort long before.
    await eventually('the upstream request is aborted', () => gw.mock.aborted === 1);
    await eventually('no upstream request is left in flight', () => gw.mock.inFlight === 0);
    expect(gw.mock.requests).toHaveLength(1);
  });

  it('aborts the upstream request when the client goes away before the response headers', async () => {
    gw.mock.reset();
    const controller = new AbortController();
    const pending = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-delay-ms': '10000' },
      body: chatBody(),
      signal: controller.signal,
    });
    await eventually('the upstream got the request', () => gw.mock.requests.length === 1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await eventually('the upstream request is aborted', () => gw.mock.aborted === 1);
    await eventually('no upstream request is left in flight', () => gw.mock.inFlight === 0);
  });

  it('aborts the upstream request when a raw client disconnects during a stream', async () => {
    gw.mock.reset();
    const body = chatBody({ stream: true });
    const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\nContent-Type: application/json\r\n` +
        `x-mock-chunks: 50\r\nx-mock-chunk-delay-ms: 50\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await eventually('the first SSE chunk arrived', () => received.includes('data: '));
    expect(received).toMatch(/^HTTP\/1\.1 200/);
    socket.destroy();
    await eventually('the upstream request is aborted', () => gw.mock.aborted === 1);
    await eventually('no upstream request is left in flight', () => gw.mock.inFlight === 0);
  });

  it('keeps serving after aborted requests', async () => {
    await expectServesNormally(gw);
  });
});

describe('legacy route: client gone before the upstream answered', () => {
  let gw: TestGateway;
  let slowMock: TestGateway['mock'];
  beforeAll(async () => {
    gw = await startGateway();
    slowMock = gw.mock;
  });
  afterAll(async () => gw.close());

  it('aborts the upstream request', async () => {
    // The legacy route forwards no client header, so the mock cannot be told to be slow by the
    // client: add the mock's delay header on the way to the upstream instead.
    slowMock.reset();
    const upstream = gw.app.upstreamPool;
    const original = upstream.send.bind(upstream);
    upstream.send = (req) => original({ ...req, headers: { ...req.headers, 'x-mock-delay-ms': '10000' } });
    try {
      const controller = new AbortController();
      const pending = fetch(`${gw.url}/api/openai/completions/gpt3`, {
        method: 'POST',
        headers: authHeaders(),
        body: '[{"role":"user","content":"slow"}]',
        signal: controller.signal,
      });
      await eventually('the upstream got the request', () => slowMock.requests.length === 1);
      controller.abort();
      await expect(pending).rejects.toThrow();
      await eventually('the upstream request is aborted', () => slowMock.aborted === 1);
      await eventually('no upstream request is left in flight', () => slowMock.inFlight === 0);
    } finally {
      upstream.send = original;
    }
    await expectServesNormally(gw);
  });
});

describe('upstream unreachable', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { OPENAI_BASE_URL: `http://127.0.0.1:${await closedPort()}/v1` } });
  });
  afterAll(async () => gw.close());

  it('answers 502 upstream_unreachable on /v1, streamed or not, and on the legacy route', async () => {
    for (const [path, body] of [
      ['/v1/chat/completions', chatBody()],
      ['/v1/chat/completions', chatBody({ stream: true })],
      ['/api/openai/completions/gpt3', '[{"role":"user","content":"hi"}]'],
    ] as const) {
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: authHeaders(), body });
      expect(res.status, path).toBe(502);
      expect(res.headers.get('content-type')).toContain('application/json');
      const json = (await res.json()) as ErrorJson;
      expect(json).toEqual({ error: { message: expect.any(String), type: 'api_error', code: 'upstream_unreachable', param: null } });
    }
  });

  it('shows a 502 to the official SDK as an APIError with that status', async () => {
    const client = new OpenAI({ apiKey: PROXY_KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 502,
      code: 'upstream_unreachable',
    });
  });

  it('still answers its own routes', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gw.url}/ratelimit`, { headers: authHeaders() })).status).toBe(200);
  });
});

describe('upstream timeout', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: { PROXYGPT_UPSTREAM_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => gw.close());

  it('answers 504 upstream_timeout when the upstream sends no headers in time', async () => {
    gw.mock.reset();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-delay-ms': '10000' },
      body: chatBody(),
    });
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: { message: expect.any(String), type: 'api_error', code: 'upstream_timeout', param: null } });
    // The gateway gave up on the upstream request rather than leaving it open.
    await eventually('the timed-out upstream request is closed', () => gw.mock.aborted === 1);
  });

  it('answers 504 for a stream whose upstream never starts', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-hang': '1' },
      body: chatBody({ stream: true }),
    });
    expect(res.status).toBe(504);
    expect(((await res.json()) as ErrorJson).error.code).toBe('upstream_timeout');
  });

  it('serves normally afterwards (a fast upstream answer is not affected by the short timeout)', async () => {
    await expectServesNormally(gw);
    const stream = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-chunks': '3' },
      body: chatBody({ stream: true }),
    });
    expect(stream.status).toBe(200);
    expect(await stream.text()).toContain('data: [DONE]');
  });
});
