/**
 * Request ids (`x-proxygpt-request-id`): a random prefix per process and a counter, unique across
 * workers and restarts. One generator for every answer: Fastify's requests, and the answers given
 * below Fastify (malformed HTTP, an unmet `Expect`), so that every answer carries one.
 */
import { randomBytes } from 'node:crypto';

const REQUEST_ID_PREFIX = randomBytes(6).toString('hex');
let requestCounter = 0;

export const nextRequestId = (): string => `${REQUEST_ID_PREFIX}-${(++requestCounter).toString(36)}`;
