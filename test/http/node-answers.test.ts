/**
 * Answers Node's HTTP server would give on its own, without a body: an HTTP/1.1 request without
 * Host (an empty 400) and an `Expect` other than 100-continue (an empty 417). The gateway gives
 * them in OpenAI's error shape, with a request id, like every other answer; what HTTP allows
 * still works (HTTP/1.0 without Host, Expect: 100-continue).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { RawConnection } from './raw-connection.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { LOG_LEVEL: 'warn' } });
});
afterAll(async () => gw.close());

async function send(data: string) {
  const conn = await RawConnection.connect(gw.url);
  conn.write(data);
  try {
    return await conn.response();
  } finally {
    conn.destroy();
  }
}

afterEach(() => RawConnection.destroyAll());

describe('a request without Host', () => {
  it('is a 400 in the error shape on HTTP/1.1', async () => {
    const res = await send(`GET /healthz HTTP/1.1\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toContain('application/json');
    expect(res.headers['x-proxygpt-request-id']).toMatch(/\S/);
    expect(expectErrorShape(JSON.parse(res.body)).code).toBe('missing_host');
  });

  it('is refused before the key is even looked at, and nothing goes upstream', async () => {
    const before = gw.mock.requests.length;
    const body = chatBody();
    const res = await send(
      `POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer ${PROXY_KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect(res.status).toBe(400);
    expect(expectErrorShape(JSON.parse(res.body)).code).toBe('missing_host');
    expect(gw.mock.requests.length).toBe(before);
  });

  it('is served on HTTP/1.0, which has no Host requirement', async () => {
    const res = await send(`GET /healthz HTTP/1.0\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
  });
});

describe('an Expect header', () => {
  it('other than 100-continue is a 417 in the error shape', async () => {
    const res = await send(`GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n`);
    expect(res.status).toBe(417);
    expect(res.headers['content-type']).toContain('application/json');
    expect(res.headers['x-proxygpt-request-id']).toMatch(/\S/);
    expect(expectErrorShape(JSON.parse(res.body)).code).toBe('expectation_failed');
  });

  it('other than 100-continue on a POST is a 417, and the call is not forwarded', async () => {
    const before = gw.mock.requests.length;
    const body = chatBody();
    const res = await send(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nAuthorization: Bearer ${PROXY_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect(res.status).toBe(417);
    expectErrorShape(JSON.parse(res.body));
    expect(gw.mock.requests.length).toBe(before);
  });

  it('of 100-continue still gets the call through', async () => {
    const body = chatBody();
    const conn = await RawConnection.connect(gw.url);
    conn.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nAuthorization: Bearer ${PROXY_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    await conn.until('100 Continue arrived', () => conn.text.startsWith('HTTP/1.1 100 Continue\r\n'));
    conn.write(body);
    const res = await conn.response();
    conn.destroy();
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('Echo: hi there');
  });
});
