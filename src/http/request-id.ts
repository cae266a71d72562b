/**
 * Request ids (`x-proxygpt-request-id`): a random prefix per process and a counter, unique across
 * workers and restarts. One generator for every answer: Fastify's requests, and the answers given
 * below Fastify (malformed HTTP, an unmet `Expect`), so that every answer carries one.
 */
import { randomBytes } from 'node:crypto';

const REQUEST_ID_PREFIX = randomBytes(6).toString('hex');
let requestCounter = 0;

export const nextRequestId = (): string => `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`;

/**
 * The headers every answer of the gateway carries, whoever writes it (Fastify's hook, the error
 * handlers, a raw socket): its request id, and `nosniff` (no answer is to be sniffed into another
 * type, an error body read as HTML).
 */
export function everyAnswerHeaders(requestId: string): Record<string, string> {
  return { 'x-proxygpt-request-id': requestId, 'x-content-type-options': 'nosniff' };
}
