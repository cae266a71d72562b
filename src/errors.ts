/**
 * OpenAI-style errors: one class the request path throws, and the JSON shape every failure uses,
 * `{"error": {"message", "type", "code", "param"}}`.
 */

export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** A copy of this error that also carries `extra` response headers. */
  withHeaders(extra: Record<string, string>): ApiError {
    const copy = new ApiError(this.statusCode, this.message, this.type, this.code, { ...extra, ...this.headers }, this.param);
    return Object.assign(copy, { cause: this.cause });
  }

  toBody(): ErrorBody {
    return errorBody(this.message, this.type, this.code, this.param);
  }
}

export function errorBody(message: string, type: string, code: string | null, param: string | null = null): ErrorBody {
  return { error: { message, type, code, param } };
}

export const badRequest = (message: string, code = 'invalid_request', param: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', code, {}, param);

export const unauthorized = (message: string) =>
  new ApiError(401, message, 'invalid_request_error', 'invalid_api_key', { 'www-authenticate': 'Bearer' });

export const forbidden = (message: string, code: string) => new ApiError(403, message, 'permission_error', code);

export const notFound = (message: string) => new ApiError(404, message, 'invalid_request_error', 'not_found');
