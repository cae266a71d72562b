/**
 * On shutdown (app.close(), what SIGTERM runs) a keep-alive connection closes as soon as its
 * answer is over, instead of idling until the grace period cuts it: the gateway here has a grace
 * period of 10 minutes, far past this test's own limit of 10 s, so close() can only finish in time
 * by closing those connections. What is asserted is what the client sees: its answer whole, then
 * the server closing the connection (announced with `Connection: close` when the answer had not
 * started yet); a request that arrives on such a connection during shutdown is a 503 in the error
 * shape.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.js';
import { createApp, type App } from '../../src/app.js';
import { startMockOpenAI, type MockOpenAI } from '../fixtures/mock-openai.js';
import { chatBody, PROXY_KEY, tempDir, UPSTREAM_KEY } from '../helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';
import { parseResponses, RawConnection } from './raw-connection.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  RawConnection.destroyAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGateway(): Promise<{ app: App; url: string; mock: MockOpenAI }> {
  const mock = await startMockOpenAI();
  const dir = tempDir();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => mock.close());
  const { config } = loadConfig({
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: mock.url,
    PROXYGPT_API_KEY: PROXY_KEY,
    PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
    LOG_LEVEL: 'silent',
  });
  const app = await createApp(config, { shutdownGraceMs: 600_000 });
  await app.server.listen({ port: 0, host: '127.0.0.1' });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) {
      app.server.server.closeAllConnections();
      await app.close();
    }
  });
  const port = (app.server.server.address() as AddressInfo).port;
  return {
    app: Object.assign(Object.create(app) as App, {
      close: async () => {
        closed = true;
        await app.close();
      },
    }),
    url: `http://127.0.0.1:${port}`,
    mock,
  };
}

/** Resolves true once `promise` settles, false if it has not within `ms` (the test's own limit). */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
}

const streamRequest = (chunks: number, gapMs: number) => {
  const body = chatBody({ stream: true });
  return (
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\nContent-Type: application/json\r\n` +
    `x-mock-chunks: ${chunks}\r\nx-mock-chunk-delay-ms: ${gapMs}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
};

describe('shutdown with keep-alive connections', () => {
  it('closes a connection whose stream was under way once the stream is over', async () => {
    const gw = await startGateway();
    const conn = await RawConnection.connect(gw.url);
    conn.write(streamRequest(10, 50));
    await conn.until('the stream started', () => conn.text.includes('data: '));
    // Announced as keep-alive: nothing but the shutdown makes the server close it.
    expect(conn.text).toMatch(/\r\nConnection: keep-alive\r\n/i);

    const closing = gw.app.close();
    expect(await within(closing, 10_000)).toBe(true);
    await conn.until('the server closed the connection', () => conn.ended);
    expect(conn.error).toBeNull();
    // The whole stream, properly ended (the last chunk of a chunked answer), and nothing else.
    const answers = parseResponses(conn.text);
    expect(answers).toHaveLength(1);
    expect(answers[0]!.body.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('says Connection: close on an answer not yet started, and closes after it', async () => {
    const gw = await startGateway();
    const conn = await RawConnection.connect(gw.url);
    const body = chatBody();
    conn.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PROXY_KEY}\r\nContent-Type: application/json\r\n` +
        `x-mock-hold: 1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    while (gw.mock.held === 0) await new Promise((resolve) => setTimeout(resolve, 10));

    const closing = gw.app.close();
    gw.mock.release();
    expect(await within(closing, 10_000)).toBe(true);
    const res = await conn.response();
    expect(res.status).toBe(200);
    expect(res.headers['connection']).toBe('close');
    expect((JSON.parse(res.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('Echo: hi there');
    await conn.until('the server closed the connection', () => conn.ended);
  });

  it('answers a request arriving on such a connection with a 503 in the error shape', async () => {
    const gw = await startGateway();
    const conn = await RawConnection.connect(gw.url);
    conn.write(streamRequest(10, 50));
    await conn.until('the stream started', () => conn.text.includes('data: '));
    const closing = gw.app.close();
    // A second request pipelined behind the stream, sent after the shutdown began.
    conn.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(await within(closing, 10_000)).toBe(true);
    await conn.until('the server closed the connection', () => conn.ended);
    const [stream, res] = parseResponses(conn.text);
    expect(stream?.body).toContain('data: [DONE]');
    expect(res?.status).toBe(503);
    expect(res?.headers['connection']).toBe('close');
    expect(expectErrorShape(JSON.parse(res!.body)).code).toBe('shutting_down');
  });
});
