/**
 * The upstream pool: one keep-alive connection pool to one OpenAI-compatible upstream, shared by
 * all requests of this process. Sends the client's body bytes as they came (no re-serialisation) and
 * hands back the response stream untouched, so SSE flows through chunk by chunk. Maps transport
 * failures to 502 (unreachable) and 504 (timed out), before the headers and (upstreamBodyFailure)
 * while a body the gateway reads whole is read. Each request may carry its own key (an upstream's
 * keys take turns) and a shorter wait for the headers (a retry gets what is left of the call's time).
 */
import { EventEmitter } from 'node:events';
import { Pool, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { upstreamTimeout, upstreamUnreachable, type ApiError } from '../errors.js';
import { upstreamRequestHeaders, type CredentialStyle } from './headers.js';

export interface UpstreamRequest {
  method: string;
  /** Path below the base URL, e.g. `/chat/completions` (the client's path without `/v1`). */
  path: string;
  /** Query string including `?`, or ''. */
  search: string;
  headers: IncomingHttpHeaders;
  body: Buffer | string | null;
  signal: CallSignal;
  /** This request's key, replacing the pool's own; null: send no credential (a server that takes none). */
  apiKey?: string | null;
  /** Wait at most this long for the response headers (default: the pool's timeout). */
  headersTimeoutMs?: number;
}

/**
 * Aborts one upstream call. undici accepts an EventEmitter with `aborted` and an 'abort' event as
 * its signal; it is much cheaper to make per request than an AbortController.
 */
export class CallSignal extends EventEmitter {
  aborted = false;
  /** Why the gateway itself aborted the call (shutting down); null: the client left. */
  reason: ApiError | null = null;

  abort(reason: ApiError | null = null): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

/** One answer of the upstream: status, headers and the body stream. */
export type UpstreamResponse = Dispatcher.ResponseData;

/** The client went away before the upstream answered; nothing is left to send. */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ClientGoneError';
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
/** Transport failures while a body is read: the connection broke (undici's own, or the socket's). */
const BROKEN_CODES = new Set(['UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ECONNRESET', 'EPIPE']);

/**
 * A failure reading an upstream answer's body (after its headers, before the client got any of
 * it), mapped like a failure before the headers: timed out → 504, broken off → 502. Anything
 * else (not a transport failure) is returned as it is.
 */
export function upstreamBodyFailure(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return err;
  if (TIMEOUT_CODES.has(code)) return upstreamTimeout(err).with({ message: 'The upstream API did not finish its answer in time.' });
  if (BROKEN_CODES.has(code)) return upstreamUnreachable(err).with({ message: 'The upstream API broke off its answer.' });
  return err;
}

export class UpstreamPool {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    baseUrl: URL,
    /** The key sent when a request names none; null: no credential. */
    private readonly apiKey: string | null,
    timeoutMs: number,
    /** Most connections to the upstream at once; null = as many as there are calls in flight. */
    connections: number | null = null,
    /** How the key is sent: `Authorization: Bearer` (OpenAI and most servers) or Azure's `api-key`. */
    private readonly credential: CredentialStyle = 'bearer',
  ) {
    this.basePath = baseUrl.pathname === '/' ? '' : baseUrl.pathname;
    this.pool = new Pool(baseUrl.origin, {
      connections,
      keepAliveTimeout: 30_000,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: Math.min(timeoutMs, 15_000) },
    });
  }

  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    const headers = upstreamRequestHeaders(req.headers, req.apiKey === undefined ? this.apiKey : req.apiKey, this.credential);
    try {
      return await this.pool.request({
        method: req.method as Dispatcher.HttpMethod,
        path: this.basePath + req.path + req.search,
        headers,
        body: req.body,
        signal: req.signal,
        ...(req.headersTimeoutMs === undefined ? {} : { headersTimeout: req.headersTimeoutMs }),
      });
    } catch (err) {
      throw this.translate(err, req.signal);
    }
  }

  private translate(err: unknown, signal: CallSignal): Error {
    if (signal.aborted) return signal.reason ?? new ClientGoneError();
    const code = (err as { code?: string }).code ?? '';
    return TIMEOUT_CODES.has(code) ? upstreamTimeout(err) : upstreamUnreachable(err);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
