/**
 * Turns every failure into an OpenAI-style JSON error with the right status: framework errors
 * (bad JSON, body too large, wrong content type, schema violations), our own ApiErrors, and
 * anything unexpected (500, generic message plus request id; details only with INSECURE_DEBUG,
 * and then with every secret redacted). Also answers malformed HTTP at the socket level and an
 * `Expect` it cannot meet. An error answered while the request body is still arriving reads (and
 * drops) a bounded rest of it before the connection goes on or is cut (connections.ts).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  ApiError,
  clientError,
  expectationFailed,
  headersTooLarge,
  internalError,
  invalidJson,
  invalidRequest,
  invalidUrl,
  malformedHttp,
  notFound,
  pathSegmentTooLong,
  requestTimeout,
  requestTooLarge,
  unsupportedMediaType,
} from '../errors.js';
import type { Redactor } from '../redact.js';
import { DRAIN_MAX_MS, drainAfterAnswer } from './connections.js';
import { everyAnswerHeaders, nextRequestId } from './request-id.js';

/** Every answer of the gateway's is JSON not to be sniffed into another type (an error body read as HTML). */

const FRAMEWORK_ERRORS: Record<string, () => ApiError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: requestTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: unsupportedMediaType,
  FST_ERR_CTP_INVALID_TYPE: unsupportedMediaType,
  FST_ERR_CTP_EMPTY_JSON_BODY: () => invalidJson('The request body is empty; send a JSON object.'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => invalidRequest('Content-Length does not match the body.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => invalidJson('The request body is not valid JSON.'),
  FST_ERR_BAD_URL: () => invalidUrl('The request URL is malformed.'),
  FST_ERR_ASYNC_CONSTRAINT: () => invalidRequest('The request could not be routed.'),
  FST_ERR_MAX_PARAM_LENGTH: pathSegmentTooLong,
};

export function toApiError(err: FastifyError | Error, insecureDebug: boolean, redactor: Redactor, requestId: string): ApiError {
  if (err instanceof ApiError) {
    // A message may quote the request (a path, a model, a key name): never one of our secrets.
    const own = redactor.hasSecret(err.message) ? err.with({ message: redactor.secretsOnly(err.message) }) : err;
    if (!insecureDebug || !(err.cause instanceof Error)) return own;
    const detail = redactor.text(`${err.cause.name}: ${err.cause.message}`);
    return own.with({ message: `${own.message} (${detail})` });
  }
  const fastifyErr = err as FastifyError;
  if (fastifyErr.validation) return invalidRequest(`Invalid request: ${redactor.text(fastifyErr.message)}`);
  const known = fastifyErr.code ? FRAMEWORK_ERRORS[fastifyErr.code] : undefined;
  if (known) return known();
  const status = fastifyErr.statusCode ?? 500;
  if (status >= 400 && status < 500) return clientError(status, redactor.text(fastifyErr.message));
  return internalError(
    insecureDebug
      ? `Internal error (request id ${requestId}): ${redactor.text(`${err.name}: ${err.message}`)}`
      : `The gateway failed to handle this request (request id ${requestId}). Set INSECURE_DEBUG=true on the server to see details.`,
  );
}

/**
 * For Fastify's `frameworkErrors` option: errors raised before routing (a malformed URL such as
 * `/v1/%zz`, an over-long path parameter), which never reach setErrorHandler. Without it Fastify
 * answers them in its own shape, not OpenAI's.
 */
export function frameworkErrorHandler(insecureDebug: boolean, redactor: Redactor) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const apiError = toApiError(err, insecureDebug, redactor, request.id);
    drainAfterAnswer(request.raw, reply.raw);
    reply
      .code(apiError.statusCode)
      .headers(apiError.headers)
      .headers(everyAnswerHeaders(request.id))
      .type('application/json; charset=utf-8')
      .send(apiError.toBody());
  };
}

export function installErrorHandling(app: FastifyInstance, insecureDebug: boolean, redactor: Redactor): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    const apiError = toApiError(err, insecureDebug, redactor, request.id);
    if (apiError.statusCode >= 500) {
      // The logger redacts every logged value (src/log.ts); a copy made here would lose the error's type.
      request.log.error({ err, status: apiError.statusCode }, 'request failed');
    }
    drainAfterAnswer(request.raw, reply.raw);
    reply.code(apiError.statusCode).headers(apiError.headers).type('application/json; charset=utf-8');
    return reply.send(apiError.toBody());
  });

  app.setNotFoundHandler((request, reply) => {
    drainAfterAnswer(request.raw, reply.raw);
    reply.code(404).type('application/json; charset=utf-8');
    return reply.send(notFound(redactor.secretsOnly(`No route for ${request.method} ${request.url.split('?')[0]}.`)).toBody());
  });
}

const CLIENT_ERRORS: Record<string, () => ApiError> = {
  HPE_HEADER_OVERFLOW: headersTooLarge,
  ERR_HTTP_REQUEST_TIMEOUT: requestTimeout,
};

/** Answer for requests Node's HTTP parser rejects (junk headers, oversized headers, timeouts). */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  // Nothing can be written once a response on this connection has started: just close it.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) return void socket.destroy();
  const error = ((err.code ? CLIENT_ERRORS[err.code] : undefined) ?? malformedHttp)();
  const body = JSON.stringify(error.toBody());
  const own = Object.entries(everyAnswerHeaders(nextRequestId())).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode]}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `${own}Connection: close\r\n\r\n${body}`,
  );
  // end() only half-closes: a client that never closes its side (one trickling a body) would
  // hold the connection for good. Time enough to read the answer, then it is gone.
  setTimeout(() => socket.destroy(), DRAIN_MAX_MS).unref();
}

/**
 * For the server's 'checkExpectation' event (an `Expect` other than 100-continue, which Node
 * otherwise answers with an empty 417): the 417 in the error shape, with a request id.
 */
export function expectationHandler(nextRequestId: () => string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const body = JSON.stringify(expectationFailed().toBody());
    drainAfterAnswer(req, res);
    res.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...everyAnswerHeaders(nextRequestId()),
    });
    res.end(body);
  };
}
