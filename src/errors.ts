/**
 * OpenAI-style errors: the one error class the gateway throws, the JSON shape every failure uses
 * (`{"error": {"message", "type", "code", "param"}}`), and the catalogue of named factories that
 * build them. Every error code a client can see is spelled in this file, once.
 */

export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

export interface ApiErrorOptions {
  status: number;
  message: string;
  /** OpenAI's error type (`invalid_request_error`, `permission_error`, …; for a 429 the limited unit). */
  type: string;
  code?: string | null;
  param?: string | null;
  /** Response headers that come with the error (`www-authenticate`, `retry-after`, rate-limit headers). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class ApiError extends Error {
  readonly statusCode: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(options: ApiErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.statusCode = options.status;
    this.type = options.type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }

  /** A copy of this error with some options replaced (the cause is kept unless replaced). */
  with(changes: Partial<ApiErrorOptions>): ApiError {
    return new ApiError({
      status: this.statusCode,
      message: this.message,
      type: this.type,
      code: this.code,
      param: this.param,
      headers: this.headers,
      cause: this.cause,
      ...changes,
    });
  }

  /** A copy of this error that also carries `extra` response headers (its own win). */
  withHeaders(extra: Record<string, string>): ApiError {
    return this.with({ headers: { ...extra, ...this.headers } });
  }

  toBody(): ErrorBody {
    return errorBody(this.message, this.type, this.code, this.param);
  }
}

export function errorBody(message: string, type: string, code: string | null, param: string | null = null): ErrorBody {
  return { error: { message, type, code, param } };
}

const INVALID = 'invalid_request_error';

// 400: the request itself is wrong.
export const invalidRequest = (message: string, param: string | null = null) =>
  new ApiError({ status: 400, message, type: INVALID, code: 'invalid_request', param });
export const invalidJson = (message: string) => new ApiError({ status: 400, message, type: INVALID, code: 'invalid_json' });
export const invalidPath = (message: string) => new ApiError({ status: 400, message, type: INVALID, code: 'invalid_path' });
export const invalidUrl = (message: string) => new ApiError({ status: 400, message, type: INVALID, code: 'invalid_url' });
/** Another 4xx the framework raised, with its own status. */
export const clientError = (status: number, message: string) => new ApiError({ status, message, type: INVALID, code: 'invalid_request' });

// 401, 403, 404, 409: who may do what.
export const unauthorized = (message: string) =>
  new ApiError({ status: 401, message, type: INVALID, code: 'invalid_api_key', headers: { 'www-authenticate': 'Bearer' } });
export const endpointNotAllowed = (message: string) => new ApiError({ status: 403, message, type: 'permission_error', code: 'endpoint_not_allowed' });
export const modelNotAllowed = (message: string) => new ApiError({ status: 403, message, type: 'permission_error', code: 'model_not_allowed' });
export const ipNotAllowed = (message: string) => new ApiError({ status: 403, message, type: 'permission_error', code: 'ip_not_allowed' });
/** A route of the dashboard's that only the admin key may use, called with a proxy key. */
export const adminOnly = (message: string) => new ApiError({ status: 403, message, type: 'permission_error', code: 'admin_only' });
export const notFound = (message: string) => new ApiError({ status: 404, message, type: INVALID, code: 'not_found' });
/** No upstream of this gateway serves the model (nothing is forwarded, nothing reserved). */
export const modelNotFound = (model: string) =>
  new ApiError({ status: 404, message: `The model ${JSON.stringify(model)} does not exist or is not served by this gateway.`, type: INVALID, code: 'model_not_found', param: 'model' });
export const conflict = (message: string) => new ApiError({ status: 409, message, type: INVALID, code: 'conflict' });

// 408, 413, 414, 415, 431: the request's size or shape (framework and socket level).
export const requestTimeout = () => new ApiError({ status: 408, message: 'The request was not received in time.', type: INVALID, code: 'request_timeout' });
export const requestTooLarge = () =>
  new ApiError({ status: 413, message: 'The request body is larger than this gateway accepts.', type: INVALID, code: 'request_too_large' });
export const pathSegmentTooLong = () => new ApiError({ status: 414, message: 'A segment of the request path is too long.', type: INVALID, code: 'invalid_url' });
export const unsupportedMediaType = () =>
  new ApiError({ status: 415, message: 'Unsupported Content-Type: send application/json.', type: INVALID, code: 'unsupported_media_type' });
export const headersTooLarge = () => new ApiError({ status: 431, message: 'Request headers are too large.', type: INVALID, code: 'headers_too_large' });
/** An HTTP/1.1 request without the Host header every HTTP/1.1 request must carry. */
export const missingHost = () =>
  new ApiError({ status: 400, message: 'The request has no Host header (HTTP/1.1 requires one).', type: INVALID, code: 'missing_host' });
/** An `Expect` header other than `100-continue`: no such expectation can be met. */
export const expectationFailed = () =>
  new ApiError({ status: 417, message: 'Unsupported Expect header: only "100-continue" is understood.', type: INVALID, code: 'expectation_failed' });
/** HTTP that Node's parser rejects (junk headers, a broken request line). */
export const malformedHttp = () => new ApiError({ status: 400, message: 'Malformed HTTP request.', type: INVALID, code: 'bad_request' });

/** 429 from the gateway's own limits; `unit` (requests, tokens, usd) is OpenAI's error type for it. */
export const rateLimited = (options: { message: string; unit: string; headers: Record<string, string> }) =>
  new ApiError({ status: 429, message: options.message, type: options.unit, code: 'rate_limit_exceeded', headers: options.headers });

/** 429 from a concurrency cap: too many calls of this key (or of the gateway) in flight at once. */
export const concurrencyLimited = (options: { message: string; headers: Record<string, string> }) =>
  new ApiError({ status: 429, message: options.message, type: 'requests', code: 'concurrency_limit_exceeded', headers: options.headers });

// 5xx: the gateway or its upstream failed.
export const internalError = (message: string) => new ApiError({ status: 500, message, type: 'server_error', code: 'internal_error' });
export const upstreamUnreachable = (cause?: unknown) =>
  new ApiError({ status: 502, message: 'The upstream API could not be reached.', type: 'api_error', code: 'upstream_unreachable', cause });
export const badUpstreamResponse = (message: string) => new ApiError({ status: 502, message, type: 'api_error', code: 'bad_upstream_response' });
/** The upstream's error body ran past what the gateway reads of one (it was cut off, not relayed). */
export const upstreamErrorTooLarge = (status: number, maxBytes: number) =>
  new ApiError({
    status: 502,
    message: `The upstream answered ${status} with an error body larger than ${maxBytes} bytes; it was not relayed.`,
    type: 'api_error',
    code: 'upstream_error_too_large',
  });
/** The shared limiter (Redis) cannot be reached and the gateway fails closed: no limit can be checked, so no call is served. */
export const limiterUnavailable = () =>
  new ApiError({ status: 503, message: 'The rate limiter is unreachable; no call can be checked against its limits. Retry shortly.', type: 'api_error', code: 'limiter_unavailable', headers: { 'retry-after': '1' } });
/** /metrics could not be collected (a cluster worker or the primary did not answer in time). */
export const metricsUnavailable = () =>
  new ApiError({ status: 503, message: 'The metrics could not be collected; retry the scrape.', type: 'api_error', code: 'metrics_unavailable' });
/**
 * Every upstream that serves the model is out for now: each key rate limited (429, sitting out
 * the upstream's Retry-After) or its breaker open (503). `retryAfterMs`: when the first is back.
 */
export const upstreamsUnavailable = (waitMs: number, rateLimited: boolean) => {
  // Infinity: only a half-open probe is out; it ends soon, one way or the other.
  const retryAfterMs = Number.isFinite(waitMs) ? waitMs : 1000;
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const headers = { 'retry-after': String(seconds), 'retry-after-ms': String(Math.max(0, Math.ceil(retryAfterMs))) };
  return rateLimited
    ? new ApiError({ status: 429, message: `Every upstream that serves this model is rate limited; retry in ${seconds}s.`, type: 'requests', code: 'upstream_rate_limited', headers })
    : new ApiError({ status: 503, message: `Every upstream that serves this model is failing; retry in ${seconds}s.`, type: 'api_error', code: 'upstream_unavailable', headers });
};
export const notReady = (message: string) => new ApiError({ status: 503, message, type: 'api_error', code: 'not_ready' });
/** The gateway is stopping: this connection takes no new request (retry; another instance may serve it). */
export const shuttingDown = () =>
  new ApiError({ status: 503, message: 'The gateway is shutting down; retry the request.', type: 'api_error', code: 'shutting_down' });
export const upstreamTimeout = (cause?: unknown) =>
  new ApiError({ status: 504, message: 'The upstream API did not answer in time.', type: 'api_error', code: 'upstream_timeout', cause });
/** Sent as the last event of a stream (its status is long gone) whose upstream event passed the cap. */
export const upstreamEventTooLarge = (maxChars: number) =>
  new ApiError({
    status: 502,
    message: `The upstream sent a stream event longer than ${maxChars / (1024 * 1024)} MiB (${maxChars} characters); the stream was ended.`,
    type: 'api_error',
    code: 'upstream_event_too_large',
  });
