/**
 * Sends hostile requests and keeps everything that came back: over a raw socket (the exact bytes
 * given, for what fetch would normalise) or with fetch, answered as status, headers and body text.
 * Also the checks every answer of the gateway's own must pass (OpenAI's error shape, no stack trace).
 */
import { expect } from 'vitest';
import { fetch } from 'undici';
import { parseResponses, RawConnection } from '../http/raw-connection.js';
import { expectErrorShape } from '../routes/bad-input-helpers.js';

export interface Answer {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** Everything received, as Latin-1 text (raw requests), or the status line, headers and body. */
  wire: string;
}

/** Writes `request` (Latin-1: one character per byte) to a fresh connection and reads the first answer. */
export async function sendRaw(url: string, request: string, options: { head?: boolean; ms?: number } = {}): Promise<Answer> {
  const conn = await RawConnection.connect(url);
  try {
    conn.write(Buffer.from(request, 'latin1'));
    if (options.head === true) {
      // An answer to HEAD announces a length it does not send: its head is all there is.
      await conn.until('the head of the answer arrived', () => conn.text.includes('\r\n\r\n'), options.ms ?? 10_000);
      return { ...parseResponses(`${conn.text.slice(0, conn.text.indexOf('\r\n\r\n'))}\r\ncontent-length: 0\r\n\r\n`)[0]!, wire: conn.text };
    }
    const response = await conn.response(options.ms ?? 10_000);
    return { status: response.status, headers: response.headers, body: Buffer.from(response.body, 'latin1').toString('utf8'), wire: conn.text };
  } finally {
    conn.destroy();
  }
}

export async function sendFetch(url: string, init: { method: string; headers: Record<string, string>; body?: string | Buffer }): Promise<Answer> {
  const res = await fetch(url, { method: init.method, headers: init.headers, body: init.body });
  const body = await res.text();
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => (headers[name] = value));
  const wire = `HTTP/1.1 ${res.status} ${res.statusText}\r\n${Object.entries(headers)
    .map(([n, v]) => `${n}: ${v}`)
    .join('\r\n')}\r\n\r\n${body}`;
  return { status: res.status, headers, body, wire };
}

/** What a stack trace or an internal detail looks like in an answer. */
const INTERNALS = /\n\s+at |node:internal|\.[cm]?[jt]s:\d+|Maximum call stack|RangeError|TypeError|SyntaxError|\/work\/|node_modules/;

/** The gateway's own answer: JSON in OpenAI's error shape (exactly its four members), no stack trace, never a 5xx of its making. */
export function expectGatewayError(what: string, answer: Answer, expected: { code?: string; param?: string; upstreamFailed?: boolean }, hasBody = true): void {
  // A 5xx is the gateway's own failure, unless it reports the upstream's (502, 504).
  if (expected.upstreamFailed === true) expect([502, 504], `${what}: status`).toContain(answer.status);
  else expect(answer.status, `${what}: a 5xx`).toBeLessThan(500);
  expect(answer.wire, `${what}: internals in the answer`).not.toMatch(INTERNALS);
  if (!hasBody) return;
  expect(answer.headers['content-type'], `${what}: content type`).toMatch(/^application\/json/);
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    throw new Error(`${what}: the answer is not JSON: ${JSON.stringify(answer.body.slice(0, 300))}`);
  }
  const error = expectErrorShape(parsed);
  if (expected.code !== undefined) expect(error.code, `${what}: ${answer.body}`).toBe(expected.code);
  if (expected.param !== undefined) expect(error.param, `${what}: ${answer.body}`).toBe(expected.param);
}
