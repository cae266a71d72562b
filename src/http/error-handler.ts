/**
 * Turns every failure into an OpenAI-style JSON error with the right status: framework errors
 * (bad JSON, body too large, wrong content type, schema violations), our own ApiErrors, and
 * anything unexpected (500, generic message plus request id; details only with INSECURE_DEBUG,
 * and then with every secret redacted). Also answers malformed HTTP at the socket level.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Socket } from 'node:net';
import { ApiError, errorBody } from '../errors.js';
import type { Redactor } from '../redact.js';

const FRAMEWORK_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'request_too_large', 'The request body is larger than this gateway accepts.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Unsupported Content-Type: send application/json.'],
  FST_ERR_CTP_INVALID_TYPE: [415, 'unsupported_media_type', 'Unsupported Content-Type: send application/json.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'The request body is empty; send a JSON object.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_request', 'Content-Length does not match the body.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'The request body is not valid JSON.'],
  FST_ERR_BAD_URL: [400, 'invalid_url', 'The request URL is malformed.'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'invalid_request', 'The request could not be routed.'],
};

export function toApiError(err: FastifyError | Error, insecureDebug: boolean, redactor: Redactor, requestId: string): ApiError {
  if (err instanceof ApiError) {
    if (!insecureDebug || !(err.cause instanceof Error)) return err;
    const detail = redactor.text(`${err.cause.name}: ${err.cause.message}`);
    return Object.assign(new ApiError(err.statusCode, `${err.message} (${detail})`, err.type, err.code, err.headers, err.param), {
      cause: err.cause,
    });
  }
  const fastifyErr = err as FastifyError;
  if (fastifyErr.validation) {
    return new ApiError(400, `Invalid request: ${redactor.text(fastifyErr.message)}`, 'invalid_request_error', 'invalid_request');
  }
  const known = fastifyErr.code ? FRAMEWORK_ERRORS[fastifyErr.code] : undefined;
  if (known) return new ApiError(known[0], known[2], 'invalid_request_error', known[1]);
  const status = fastifyErr.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return new ApiError(status, redactor.text(fastifyErr.message), 'invalid_request_error', 'invalid_request');
  }
  const message = insecureDebug
    ? `Internal error (request id ${requestId}): ${redactor.text(`${err.name}: ${err.message}`)}`
    : `The gateway failed to handle this request (request id ${requestId}). Set INSECURE_DEBUG=true on the server to see details.`;
  return new ApiError(500, message, 'server_error', 'internal_error');
}

export function installErrorHandling(app: FastifyInstance, insecureDebug: boolean, redactor: Redactor): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    const apiError = toApiError(err, insecureDebug, redactor, request.id);
    if (apiError.statusCode >= 500) {
      request.log.error({ err: redactor.value(err), status: apiError.statusCode }, 'request failed');
    }
    reply.code(apiError.statusCode).headers(apiError.headers).type('application/json; charset=utf-8');
    return reply.send(apiError.toBody());
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).type('application/json; charset=utf-8');
    return reply.send(errorBody(`No route for ${request.method} ${request.url.split('?')[0]}.`, 'invalid_request_error', 'not_found'));
  });
}

/** Answer for requests Node's HTTP parser rejects (junk headers, oversized headers). */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify(
    errorBody(tooLarge ? 'Request headers are too large.' : 'Malformed HTTP request.', 'invalid_request_error', tooLarge ? 'headers_too_large' : 'bad_request'),
  );
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
