/**
 * A configured secret that looks like no token (no `sk-`, `pgpt-` or Bearer shape) is protected only
 * by its value, so every copy of it must go: twice or three times in one text, in the strings of a
 * nested object, in an Error's message and stack, in a real gateway's log line and 500 answer, and
 * in an upstream's error body passed on to the client. One copy left is a leak.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redactor } from '../../src/redact.js';
import { authHeaders, chatBody, startGateway, type TestGateway } from '../helpers.js';

const PLAIN_ADMIN = 'plain-admin-secret-123';
const PLAIN_UPSTREAM = 'abc123plainkey';
const PLAIN_PROXY = 'plain-proxy-key-value-77';
const PLAIN = [PLAIN_ADMIN, PLAIN_UPSTREAM, PLAIN_PROXY];

const count = (text: string, part: string) => text.split(part).length - 1;

function expectNone(what: string, text: string): void {
  for (const secret of PLAIN) expect(count(text, secret), `${what} still holds ${secret}`).toBe(0);
}

describe('Redactor: every copy of a plain secret', () => {
  const redactor = new Redactor(PLAIN);

  it('in a text, two and three times, side by side and apart', () => {
    expect(redactor.text(`${PLAIN_ADMIN} and ${PLAIN_ADMIN}`)).toBe('[REDACTED] and [REDACTED]');
    expect(redactor.text(`a=${PLAIN_UPSTREAM};b=${PLAIN_UPSTREAM};c=${PLAIN_UPSTREAM}`)).toBe('a=[REDACTED];b=[REDACTED];c=[REDACTED]');
    expect(redactor.text(`${PLAIN_UPSTREAM}${PLAIN_UPSTREAM}`)).toBe('[REDACTED][REDACTED]');
    expect(redactor.text(`${PLAIN_PROXY}\n${PLAIN_ADMIN}\n${PLAIN_PROXY}\n${PLAIN_ADMIN}`)).toBe('[REDACTED]\n[REDACTED]\n[REDACTED]\n[REDACTED]');
  });

  it('in every string of a nested object and array', () => {
    const input = {
      message: `first ${PLAIN_ADMIN}, again ${PLAIN_ADMIN}`,
      list: [`${PLAIN_UPSTREAM} ${PLAIN_UPSTREAM} ${PLAIN_UPSTREAM}`, { deeper: [`x${PLAIN_PROXY}y${PLAIN_PROXY}z`] }],
      [PLAIN_ADMIN]: 'a property named like a secret keeps its value',
    };
    expect(redactor.value(input)).toEqual({
      message: 'first [REDACTED], again [REDACTED]',
      list: ['[REDACTED] [REDACTED] [REDACTED]', { deeper: ['x[REDACTED]y[REDACTED]z'] }],
      [PLAIN_ADMIN]: 'a property named like a secret keeps its value',
    });
  });

  it('in an Error: message, stack, code and cause', () => {
    const err = Object.assign(new Error(`failed: ${PLAIN_UPSTREAM} then ${PLAIN_UPSTREAM} then ${PLAIN_UPSTREAM}`, { cause: new Error(`${PLAIN_ADMIN}/${PLAIN_ADMIN}`) }), {
      code: `${PLAIN_PROXY}:${PLAIN_PROXY}`,
    });
    expect(count(err.stack!, PLAIN_UPSTREAM)).toBe(3);
    const out = redactor.value(err) as { message: string; stack: string; code: string; cause: { message: string; stack: string } };
    expect(out.message).toBe('failed: [REDACTED] then [REDACTED] then [REDACTED]');
    expect(out.stack.startsWith('Error: failed: [REDACTED] then [REDACTED] then [REDACTED]\n')).toBe(true);
    expect(out.code).toBe('[REDACTED]:[REDACTED]');
    expect(out.cause.message).toBe('[REDACTED]/[REDACTED]');
    expectNone('the redacted error', JSON.stringify(out) + out.stack + out.cause.stack);
  });
});

describe('a real gateway configured with plain secrets', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const close of closers.splice(0)) await close();
  });

  async function start(env: Record<string, string> = {}): Promise<TestGateway> {
    const gw = await startGateway({
      env: { OPENAI_API_KEY: PLAIN_UPSTREAM, PROXYGPT_API_KEYS: PLAIN_PROXY, PROXYGPT_ADMIN_KEY: PLAIN_ADMIN, INSECURE_DEBUG: 'true', ...env },
    });
    closers.push(() => gw.close());
    return gw;
  }

  it('removes every copy from the log line and the (INSECURE_DEBUG) 500 answer of a failure', async () => {
    const gw = await start();
    vi.spyOn(gw.app.upstreamPool, 'send').mockRejectedValueOnce(
      new Error(`upstream ${PLAIN_UPSTREAM} / ${PLAIN_UPSTREAM} / ${PLAIN_UPSTREAM}, admin ${PLAIN_ADMIN} ${PLAIN_ADMIN}, client ${PLAIN_PROXY} ${PLAIN_PROXY}`),
    );
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(PLAIN_PROXY), body: chatBody() });
    const body = await res.text();
    expect(res.status).toBe(500);
    expect((JSON.parse(body) as { error: { message: string } }).error.message).toContain(
      'upstream [REDACTED] / [REDACTED] / [REDACTED], admin [REDACTED] [REDACTED], client [REDACTED] [REDACTED]',
    );
    expectNone('the 500 answer', `${JSON.stringify([...res.headers])}\n${body}`);

    let line: string | undefined;
    for (let i = 0; i < 200 && line === undefined; i++) {
      line = gw.logs.find((l) => l.includes('request failed'));
      if (line === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(line, gw.logs.join('')).toBeDefined();
    const err = (JSON.parse(line!) as { err: { message: string; stack: string } }).err;
    expect(err.message).toBe('upstream [REDACTED] / [REDACTED] / [REDACTED], admin [REDACTED] [REDACTED], client [REDACTED] [REDACTED]');
    expect(count(err.stack, '[REDACTED]')).toBeGreaterThanOrEqual(7);
    expectNone('the log', gw.logs.join(''));
  });

  it('removes every copy of the upstream key an upstream echoes in its error body (pass-through and legacy)', async () => {
    // A badly behaved upstream that repeats the key it got, without its Bearer scheme, three times.
    const upstream: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const key = String(req.headers.authorization).replace(/^Bearer /, '');
        const body = JSON.stringify({ error: { message: `key ${key} is wrong; ${key} was revoked (${key})`, type: 'invalid_request_error', code: 'invalid_api_key', param: null } });
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    const gw = await start({ OPENAI_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`, INSECURE_DEBUG: 'false' });

    for (const [path, body] of [
      ['/v1/chat/completions', chatBody()],
      ['/api/openai/completions/gpt3', JSON.stringify([{ role: 'user', content: 'hi' }])],
    ] as const) {
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: authHeaders(PLAIN_PROXY), body });
      const text = await res.text();
      expect(res.status, path).toBe(401);
      expect((JSON.parse(text) as { error: { message: string } }).error.message).toBe('key [REDACTED] is wrong; [REDACTED] was revoked ([REDACTED])');
      expectNone(path, `${JSON.stringify([...res.headers])}\n${text}`);
    }
    expectNone('the log', gw.logs.join(''));
  });
});
