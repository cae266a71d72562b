/**
 * An upstream error body is read up to 1 MiB, no more: a longer one (endless, or announced with a
 * Content-Length past the cap) is cut off, the upstream request aborted, and the client gets a 502
 * `upstream_error_too_large` naming the upstream's status, in the error shape, instead of a body
 * the gateway would first have buffered whole. Error bodies up to the cap still pass through as
 * they came. In `success` counting mode the refused call is not counted. The upstream is a small
 * server of this file's own: the mock upstream has no error body of that size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { authHeaders, chatBody, PROXY_KEY, startGateway, type TestGateway } from '../helpers.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';

const MiB = 1024 * 1024;

interface ErrorUpstream {
  url: string;
  /** For each error answer: bytes written, and whether the gateway cut it off before its end. */
  answers: { written: number; cut: boolean }[];
  close(): Promise<void>;
}

/**
 * Answers every request with `x-test-status` (default 200, a chat completion) and, for errors,
 * an error body of `x-test-error-bytes` bytes sent in 64 KiB chunks as fast as the gateway reads
 * them: chunked, or with its Content-Length announced (`x-test-declare-length: 1`). The legacy
 * route sends headers of its own: there the last message's content says it (`error <status> <bytes>`).
 */
async function startErrorUpstream(): Promise<ErrorUpstream> {
  const answers: ErrorUpstream['answers'] = [];
  const server: Server = createServer((req, res) => {
    let received = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (received += chunk));
    req.on('end', () => {
      const asked = /"content":"error (\d+) (\d+)"/.exec(received);
      if (asked) Object.assign(req.headers, { 'x-test-status': asked[1], 'x-test-error-bytes': asked[2] });
      const status = Number(req.headers['x-test-status'] ?? 200);
      if (status === 200) {
        const body = JSON.stringify({
          id: 'chatcmpl-test',
          object: 'chat.completion',
          created: 0,
          model: 'gpt-4o-mini',
          choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        return res.end(body);
      }
      const total = Number(req.headers['x-test-error-bytes']);
      const headers: Record<string, string | number> = { 'content-type': 'application/json' };
      if (req.headers['x-test-declare-length'] === '1') headers['content-length'] = total;
      res.writeHead(status, headers);
      const answer = { written: 0, cut: false };
      answers.push(answer);
      res.on('close', () => (answer.cut = !res.writableFinished));
      // A JSON error body: {"error":{"message":"xxxx…"}} padded to `total` bytes.
      const head = '{"error":{"message":"';
      const tail = '","type":"server_error","code":null,"param":null}}';
      let left = total - head.length - tail.length;
      res.write(head);
      answer.written = head.length;
      const write = () => {
        while (left > 0 && !res.destroyed) {
          const size = Math.min(left, 64 * 1024);
          left -= size;
          answer.written += size;
          if (!res.write('x'.repeat(size))) return void res.once('drain', write);
        }
        if (!res.destroyed) {
          answer.written += tail.length;
          res.end(tail);
        }
      };
      write();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let upstream: ErrorUpstream;
let gw: TestGateway;
beforeAll(async () => {
  upstream = await startErrorUpstream();
  gw = await startGateway({
    env: {
      OPENAI_BASE_URL: upstream.url,
      USE_HOURLY_RATE_LIMIT: 'true',
      PROXYGPT_HOURLY_RATE_LIMIT: '1000',
      PROXYGPT_RATE_LIMIT_COUNT: 'success',
      LOG_LEVEL: 'warn',
    },
  });
});
afterAll(async () => {
  await gw.close();
  await upstream.close();
});

async function hourlyUsage(): Promise<number> {
  const res = await fetch(`${gw.url}/ratelimit`, { headers: authHeaders() });
  return ((await res.json()) as { hourly_api_usage: number }).hourly_api_usage;
}

function callWithError(status: number, bytes: number, declareLength = false, path = '/v1/chat/completions', body = chatBody()) {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: {
      ...authHeaders(),
      'x-test-status': String(status),
      'x-test-error-bytes': String(bytes),
      ...(declareLength ? { 'x-test-declare-length': '1' } : {}),
    },
    body,
  });
}

describe('an upstream error body past 1 MiB', () => {
  it.each([
    ['sent chunked', false],
    ['announced with its Content-Length', true],
  ])('(%s) is cut off: 502 upstream_error_too_large naming the status, upstream aborted', async (_name, declared) => {
    const usageBefore = await hourlyUsage();
    const res = await callWithError(500, 64 * MiB, declared);
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toContain('application/json');
    const error = expectErrorShape(await res.json());
    expect(error.code).toBe('upstream_error_too_large');
    expect(error.message).toContain('500');
    // The upstream did not get to send its 64 MiB: the gateway hung up on it.
    const answer = upstream.answers.at(-1)!;
    await expect.poll(() => answer.cut).toBe(true);
    expect(answer.written).toBeLessThan(64 * MiB);
    // success counting: a call that did not succeed is not counted.
    expect(await hourlyUsage()).toBe(usageBefore);
  });

  it('is cut off on the legacy route as well', async () => {
    const res = await callWithError(429, 8 * MiB, false, '/api/openai/completions/gpt3', `[{"role":"user","content":"error 429 ${8 * MiB}"}]`);
    expect(res.status).toBe(502);
    const error = expectErrorShape(await res.json());
    expect(error.code).toBe('upstream_error_too_large');
    expect(error.message).toContain('429');
  });

  it('reaches an SDK client as a clear APIError', async () => {
    const client = new OpenAI({ apiKey: PROXY_KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const err = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-test-status': '400', 'x-test-error-bytes': String(4 * MiB) } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_error_too_large');
  });
});

describe('an upstream error body up to 1 MiB', () => {
  it.each([
    ['chunked', false],
    ['with its Content-Length', true],
  ])('of exactly 1 MiB (%s) passes through whole with its status', async (_name, declared) => {
    const res = await callWithError(503, MiB, declared);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(Buffer.byteLength(text)).toBe(MiB);
    expect((JSON.parse(text) as { error: { type: string } }).error.type).toBe('server_error');
    expect(upstream.answers.at(-1)!.cut).toBe(false);
  });

  it('leaves the gateway serving', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(), body: chatBody() });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('fine');
  });
});
