/**
 * Slow clients cannot hold a connection: a request (headers and body) must arrive within
 * PROXYGPT_REQUEST_TIMEOUT_MS, its headers within the headers bound (the same here), and an idle
 * keep-alive connection is closed after PROXYGPT_KEEPALIVE_TIMEOUT_MS. The bound covers receiving
 * the request only: a stream that lasts longer than it is delivered whole. Bounds of 1 s here; each
 * test asserts what happened (408 in the error shape, connection ended by the server), and the
 * wait for it is only a generous limit, never the verdict.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { RawConnection } from './raw-connection.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { PROXYGPT_REQUEST_TIMEOUT_MS: '1000', PROXYGPT_KEEPALIVE_TIMEOUT_MS: '1000', LOG_LEVEL: 'warn' } });
});
afterAll(async () => gw.close());

/**
 * Writes `byte` every 100 ms until the connection is gone (the server closed it: a half-close
 * would leave the trickling client its socket); resolves with the count written.
 */
async function trickle(conn: RawConnection, byte: string): Promise<number> {
  let written = 0;
  const timer = setInterval(() => {
    if (conn.write(byte)) written++;
  }, 100);
  try {
    await conn.until('the server closed the connection', () => conn.closed);
  } finally {
    clearInterval(timer);
  }
  return written;
}

afterEach(() => RawConnection.destroyAll());

describe('request timeout', () => {
  it('cuts a body sent one byte at a time: 408 in the error shape, connection closed, nothing forwarded', async () => {
    const upstreamBefore = gw.mock.requests.length;
    const conn = await RawConnection.connect(gw.url);
    conn.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
    );
    const written = await trickle(conn, ' ');
    // The client was still sending when the server gave up on it.
    expect(written).toBeGreaterThan(0);
    const res = conn.firstResponse();
    expect(res?.status).toBe(408);
    expect(res?.headers['connection']).toBe('close');
    expect(expectErrorShape(JSON.parse(res!.body)).code).toBe('request_timeout');
    expect(gw.mock.requests.length).toBe(upstreamBefore);
  });

  it('cuts headers sent one byte at a time with a 408', async () => {
    const conn = await RawConnection.connect(gw.url);
    conn.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: `);
    await trickle(conn, 'a');
    const res = conn.firstResponse();
    expect(res?.status).toBe(408);
    expect(expectErrorShape(JSON.parse(res!.body)).code).toBe('request_timeout');
  });

  it('closes a connection that never sends a request (and then does not close it either)', async () => {
    const conn = await RawConnection.connect(gw.url);
    await conn.until('the server ended the connection', () => conn.ended);
    expect(conn.firstResponse()?.status).toBe(408);
    // The client ignores the answer and trickles on: the server still lets go of the connection.
    await trickle(conn, 'x');
    expect(conn.closed).toBe(true);
  });

  it('does not cut a stream that lasts longer than the request timeout', async () => {
    // 20 chunks 100 ms apart: about twice the request timeout.
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...authHeaders(), 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '100' },
      body: chatBody({ stream: true }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const contentChunks = text.split('\n\n').filter((event) => event.includes('"content":"') && !event.includes('"content":""'));
    expect(contentChunks).toHaveLength(20);
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('does not cut a slow upstream answer either (the request was received in time)', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { ...authHeaders(), 'x-mock-delay-ms': '1800' }, body: chatBody() });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('Echo: hi there');
  });
});

describe('keep-alive', () => {
  it('closes an idle keep-alive connection after PROXYGPT_KEEPALIVE_TIMEOUT_MS, and says so', async () => {
    const conn = await RawConnection.connect(gw.url);
    conn.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = await conn.response();
    expect(res.status).toBe(200);
    expect(res.headers['connection']).toBe('keep-alive');
    expect(res.headers['keep-alive']).toBe('timeout=1');
    // Nothing more is sent: the server closes the idle connection on its own.
    await conn.until('the server closed the idle connection', () => conn.ended);
    expect(conn.error).toBeNull();
  });
});
