/**
 * Answers sent before the request body was read (a 401 for a bad key, a 413 for a body over the
 * limit): the client sees the answer, and the connection ends soon after.
 * - A client still uploading when the answer goes out (a 60 MB body, chunked or not) gets the 413
 *   or 401 in full instead of a reset (EPIPE) mid-upload: the gateway reads on for a bounded
 *   amount before it closes.
 * - A client that keeps trickling its body after the 401 is not read forever: the server ends the
 *   connection while the client is still sending (with the default request timeout of a minute,
 *   so it is not that timeout that ends it).
 * - A client whose body had arrived whole keeps its connection for the next request.
 * - A kept-alive connection that gets many such answers holds nothing more for each of them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Socket } from 'node:net';
import { request, type IncomingMessage } from 'node:http';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { parseResponses, RawConnection } from './raw-connection.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { LOG_LEVEL: 'warn' } });
});
afterAll(async () => gw.close());

afterEach(async () => {
  RawConnection.destroyAll();
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
  expect(res.status).toBe(200);
});

const BIG = 60 * 1024 * 1024;

interface UploadOutcome {
  /** The answer, if the client got one (status, connection header, body). */
  answer: { status: number; connection: string | undefined; body: string } | null;
  /** The client's error, if it failed before it had the whole answer. */
  error: string | null;
}

/**
 * POSTs a 60 MB body as fast as the connection takes it (with Content-Length, or chunked), on a
 * connection of its own, as Node's http client does; resolves with the first of: the whole
 * answer, or the client's error.
 */
function upload(key: string, chunked: boolean): Promise<UploadOutcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = authHeaders(key);
    if (!chunked) headers['content-length'] = String(BIG);
    const req = request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers, agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ answer: { status: res.statusCode!, connection: res.headers.connection, body }, error: null }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ answer: null, error: `response: ${err.code ?? err.message}` }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ answer: null, error: `request: ${err.code ?? err.message}` }));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < BIG && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('a large upload answered early', () => {
  it.each([
    ['chunked', true],
    ['with Content-Length', false],
  ])('gets the whole 413 (%s), not a reset, every time', async (_name, chunked) => {
    for (let i = 0; i < 3; i++) {
      const outcome = await upload(PROXY_KEY, chunked);
      expect(outcome.error).toBeNull();
      expect(outcome.answer?.status).toBe(413);
      expect(outcome.answer?.connection).toBe('close');
      expect(expectErrorShape(JSON.parse(outcome.answer!.body)).code).toBe('request_too_large');
    }
  });

  it('gets the whole 401 for a bad key (chunked), not a reset', async () => {
    for (let i = 0; i < 3; i++) {
      const outcome = await upload('pgpt-not-a-key-xxxxxxxxxxxxxxxx', true);
      expect(outcome.error).toBeNull();
      expect(outcome.answer?.status).toBe(401);
      expect(expectErrorShape(JSON.parse(outcome.answer!.body)).code).toBe('invalid_api_key');
    }
  });
});

describe('a slow body answered early', () => {
  it('is not read on after the 401: the server ends the connection while the client still sends', async () => {
    const conn = await RawConnection.connect(gw.url);
    conn.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pgpt-not-a-key-xxxxxxxxxxxxxxxx\r\n` +
        `Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
    );
    const res = await conn.response();
    expect(res.status).toBe(401);
    expectErrorShape(JSON.parse(res.body));
    // One byte every 100 ms: at that rate the body would take almost three hours.
    let writtenAfterAnswer = 0;
    const timer = setInterval(() => {
      if (conn.write(' ')) writtenAfterAnswer++;
    }, 100);
    try {
      await conn.until('the server ended the connection', () => conn.ended);
    } finally {
      clearInterval(timer);
    }
    expect(writtenAfterAnswer).toBeGreaterThan(0);
    conn.destroy();
  });

  it('keeps the connection of a request whose body had fully arrived (a 401 with the whole body)', async () => {
    const body = chatBody();
    const conn = await RawConnection.connect(gw.url);
    conn.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pgpt-not-a-key-xxxxxxxxxxxxxxxx\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const res = await conn.response();
    expect(res.status).toBe(401);
    expect(res.headers['connection']).toBe('keep-alive');
    // The same connection serves the next request.
    conn.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await conn.until('the second answer arrived', () => conn.text.includes('{"status":"ok"}'));
    conn.destroy();
  });

  it('keeps nothing per answer on a kept-alive connection: twenty 401s sent before their bodies leave no listener behind', async () => {
    const serverSockets: Socket[] = [];
    const onConnection = (socket: Socket) => serverSockets.push(socket);
    gw.app.server.server.on('connection', onConnection);
    const conn = await RawConnection.connect(gw.url);
    gw.app.server.server.off('connection', onConnection);
    await vi.waitFor(() => expect(serverSockets).toHaveLength(1));
    const socket = serverSockets[0]!;
    const body = chatBody();
    const closeListenersBefore = socket.listenerCount('close');
    for (let i = 1; i <= 20; i++) {
      conn.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer pgpt-not-a-key-xxxxxxxxxxxxxxxx\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
      );
      // The 401 goes out before the body is sent: the gateway drains the body after it.
      await conn.until(`answer ${i} arrived`, () => parseResponses(conn.text).length === i);
      expect(parseResponses(conn.text)[i - 1]).toMatchObject({ status: 401 });
      conn.write(body);
    }
    // Once the last body is drained, the socket has the listeners it had before the first answer.
    await vi.waitFor(() => expect(socket.listenerCount('close')).toBe(closeListenersBefore));
    conn.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await conn.until('the last answer arrived', () => conn.text.includes('{"status":"ok"}'));
    conn.destroy();
  });
});
