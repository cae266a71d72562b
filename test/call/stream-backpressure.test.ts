/**
 * A streamed answer moves at the client's pace: while the client reads nothing, the gateway stops
 * reading the upstream's stream (what it has taken is bounded by the sockets' and streams'
 * buffers, not by the answer's size), and once the client reads again every event arrives, in
 * order, to the last. The upstream is a small server of this file's own that writes a large SSE
 * answer as fast as its socket takes it and counts what it wrote; the client is node:http, paused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';

const MiB = 1024 * 1024;
/** The answer: events of 32 KiB of content, 64 MiB in all. */
const EVENT_CONTENT = 32 * 1024;
const EVENTS = 2048;
const TOTAL = EVENT_CONTENT * EVENTS;

interface StreamUpstream {
  url: string;
  /** Bytes of the current answer written so far (accepted by its socket or buffered by it: res.write). */
  written: number;
  close(): Promise<void>;
}

async function startStreamUpstream(): Promise<StreamUpstream> {
  const content = 'x'.repeat(EVENT_CONTENT);
  const upstream: StreamUpstream = { url: '', written: 0, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      upstream.written = 0;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let sent = 0;
      const write = () => {
        while (sent < EVENTS && !res.destroyed) {
          const event = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `${sent}:${content}` } }] })}\n\n`;
          sent++;
          upstream.written += event.length;
          if (!res.write(event)) return void res.once('drain', write);
        }
        if (res.destroyed) return;
        res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: EVENTS, total_tokens: EVENTS + 5 } })}\n\n`);
        res.end('data: [DONE]\n\n');
      };
      write();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  upstream.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return upstream;
}

/** Resolves once `read()` has not changed for `quietMs` (or after `maxMs`), with its last value. */
async function settled(read: () => number, quietMs: number, maxMs: number): Promise<number> {
  const started = Date.now();
  let last = read();
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (read() !== last) {
      last = read();
      since = Date.now();
    }
  }
  return last;
}

let upstream: StreamUpstream;
let gw: TestGateway;
beforeAll(async () => {
  upstream = await startStreamUpstream();
  gw = await startGateway({ env: { OPENAI_BASE_URL: upstream.url, LOG_LEVEL: 'warn' } });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('a stream the client reads slowly', () => {
  it('stops reading the upstream while the client reads nothing, then delivers every event once it reads', { timeout: 60_000 }, async () => {
    const url = new URL(`${gw.url}/v1/chat/completions`);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: authHeaders(PROXY_KEY) }, resolve);
      req.on('error', reject);
      req.end(chatBody({ stream: true }));
    });
    expect(res.statusCode).toBe(200);
    res.pause();

    // Nothing read: what the upstream could write is what the buffers on the way hold.
    const whilePaused = await settled(() => upstream.written, 400, 10_000);
    expect(whilePaused).toBeGreaterThan(0);
    expect(whilePaused, `the upstream wrote ${(whilePaused / MiB).toFixed(1)} MiB while the client read nothing`).toBeLessThan(TOTAL / 2);

    // Reading again: the rest comes, every event in order, then the end of the stream.
    res.setEncoding('utf8');
    let text = '';
    res.on('data', (chunk: string) => (text += chunk));
    res.resume();
    await new Promise<void>((resolve, reject) => {
      const stalled = setTimeout(() => reject(new Error(`the stream stalled after ${text.length} characters`)), 30_000);
      res.on('end', () => {
        clearTimeout(stalled);
        resolve();
      });
      res.on('error', reject);
    });
    expect(upstream.written).toBeGreaterThanOrEqual(TOTAL);
    const contents = text
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map((event) => (JSON.parse(event.slice('data: '.length)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content)
      .filter((content): content is string => content !== undefined);
    expect(contents).toHaveLength(EVENTS);
    contents.forEach((content, i) => expect(content.startsWith(`${i}:`)).toBe(true));
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });
});
