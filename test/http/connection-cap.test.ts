/**
 * PROXYGPT_MAX_CONNECTIONS: open client connections per process. Past the cap a new connection is
 * closed at once (no HTTP is spoken on it); the connections within it go on serving, and once one
 * of them closes a new connection is accepted again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { eventually } from '../keys/helpers.js';
import { parseResponses, RawConnection } from './raw-connection.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ env: { PROXYGPT_MAX_CONNECTIONS: '2' } });
});
afterEach(() => RawConnection.destroyAll());
afterAll(async () => gw?.close());

const request = () => {
  const body = chatBody();
  return `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};

async function served(conn: RawConnection): Promise<number> {
  const before = parseResponses(conn.text).length;
  conn.write(request());
  await conn.until('an answer', () => parseResponses(conn.text).length > before);
  return parseResponses(conn.text).at(-1)!.status;
}

describe('PROXYGPT_MAX_CONNECTIONS', () => {
  it('closes a connection past the cap at once; the others serve; room comes back when one closes', async () => {
    const first = await RawConnection.connect(gw.url);
    const second = await RawConnection.connect(gw.url);
    expect(await served(first)).toBe(200);
    expect(await served(second)).toBe(200);

    const third = await RawConnection.connect(gw.url);
    third.write(request());
    await third.until('the server closes the third connection', () => third.ended);
    expect(third.text).toBe(''); // not a word of HTTP on it
    // The two within the cap still serve, on the same connections.
    expect(await served(first)).toBe(200);
    expect(await served(second)).toBe(200);

    first.socket.destroy();
    await eventually('a new connection is served again', async () => {
      const again = await RawConnection.connect(gw.url);
      again.write(request());
      await again.until('an answer or a close', () => again.ended || parseResponses(again.text).length > 0);
      return parseResponses(again.text)[0]?.status ?? 0;
    }, (status) => status === 200);
  });
});
