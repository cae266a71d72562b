/**
 * The HTTP server's connections: how long a client may take to send a request, and how long an
 * idle keep-alive connection stays open.
 *
 * - Bounds: the whole request (headers and body) must arrive within the request timeout, its
 *   headers within a shorter one; Node checks both on a schedule and the client gets a 408. These
 *   bound receiving only: an answer (a stream) takes as long as it needs.
 */
import type { ServerOptions as HttpServerOptions } from 'node:http';

/** The headers of a request must arrive within this (or the whole request's bound, if shorter). */
const HEADERS_TIMEOUT_MAX_MS = 20_000;
/** Longest a connection stays open after its last answer when the client does not close it. */
export const DRAIN_MAX_MS = 2_000;

export interface ServerTimeouts {
  /** Fastify's own options of the same names (it sets them on the server). */
  requestTimeout: number;
  keepAliveTimeout: number;
  /** Options for Node's http.createServer. */
  http: HttpServerOptions;
}

export function serverTimeouts(requestTimeoutMs: number, keepAliveTimeoutMs: number): ServerTimeouts {
  const headersTimeout = Math.min(requestTimeoutMs, HEADERS_TIMEOUT_MAX_MS);
  return {
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    http: {
      requestTimeout: requestTimeoutMs,
      headersTimeout,
      // Node enforces both bounds only when it checks, every this often (30 s by default): a
      // quarter of the headers bound keeps the overrun small.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
    },
  };
}
