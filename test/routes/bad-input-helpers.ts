/**
 * Shared by the bad-input tests: one gateway per test file (small body limit, model and endpoint
 * allowlists) that must keep serving (a normal call succeeds after every test), requests sent as
 * raw bytes over a socket (for paths fetch() would normalise), and the OpenAI error-shape check.
 */
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import net from 'node:net';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';

export const MAX_BODY = 1024;

export interface RawResponse {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  body: string;
}

/** Asserts the OpenAI error shape (exactly these four members; `param` null or a field name) and returns the error object. */
export function expectErrorShape(body: unknown): { message: string; type: string; code: string | null; param: string | null } {
  const param = (body as { error?: { param?: unknown } } | null)?.error?.param;
  expect(body).toEqual({
    error: {
      message: expect.any(String),
      type: expect.any(String),
      code: expect.anything(),
      param: typeof param === 'string' ? param : null,
    },
  });
  const error = (body as { error: { message: string; type: string; code: string | null; param: string | null } }).error;
  expect(error.message.length).toBeGreaterThan(0);
  expect(typeof error.code).toBe('string');
  return error;
}

/**
 * Call once at the top of a test file: starts the gateway before the file's tests, checks after each
 * test that it still serves, closes it after all. `ctx.gw` and `ctx.port` are set once it runs.
 */
export function badInputGateway() {
  const ctx = {} as { gw: TestGateway; port: number };

  beforeAll(async () => {
    ctx.gw = await startGateway({
      env: {
        PROXYGPT_MAX_BODY_BYTES: String(MAX_BODY),
        PROXYGPT_ALLOWED_MODELS: 'gpt-4o*',
        PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, POST /v1/embeddings',
      },
    });
    ctx.port = Number(new URL(ctx.gw.url).port);
  });
  afterAll(async () => ctx.gw.close());

  // The gateway must survive every bad request: a normal call succeeds after each test.
  afterEach(async () => {
    const res = await fetch(`${ctx.gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('Echo: hi there');
  });

  /** Sends raw bytes over a fresh TCP connection and parses the (single) HTTP response. */
  function rawRequest(data: string | Buffer): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(ctx.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no complete answer within 10 s; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
      }, 10_000);
      socket.on('connect', () => socket.write(data));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      // The server may reset the connection after answering a request it could not parse.
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('latin1');
        const split = text.indexOf('\r\n\r\n');
        if (split === -1) return reject(new Error(`no HTTP response: ${JSON.stringify(text)}`));
        const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
        resolve({ status, statusLine: statusLine!, headers, body: text.slice(split + 4) });
      });
    });
  }

  const rawGet = (path: string, extraHeaders = '') =>
    rawRequest(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${PROXY_KEY}\r\n${extraHeaders}Connection: close\r\n\r\n`);

  /** A POST to the gateway; `json` is the parsed answer, or its text when it is not JSON. */
  async function post(path: string, init: { headers?: Record<string, string>; body?: string }) {
    const res = await fetch(`${ctx.gw.url}${path}`, { method: 'POST', headers: init.headers, body: init.body });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { res, json };
  }

  /** Number of requests the mock upstream received while running `fn`. */
  async function upstreamCalls(fn: () => Promise<void>): Promise<number> {
    const before = ctx.gw.mock.requests.length;
    await fn();
    return ctx.gw.mock.requests.length - before;
  }

  return { ctx, rawRequest, rawGet, post, upstreamCalls };
}
