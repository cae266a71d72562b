/**
 * The corpus's vocabulary (corpus.ts): what a row is, the gateway it runs against, and the helpers
 * that write request bodies and raw requests (`{{KEY}}` stands for the row's key, `{{AUTH}}` for
 * its whole Authorization line; raw text is sent as Latin-1 bytes, bodies as UTF-8).
 */
export type KeyKind = 'none' | 'env' | 'stored' | 'admin';
export type Category =
  | 'json'
  | 'numbers'
  | 'types'
  | 'size'
  | 'content-type'
  | 'multipart'
  | 'headers'
  | 'auth'
  | 'paths'
  | 'framing'
  | 'protocol'
  | 'routes'
  | 'slow';

export interface Expected {
  status: number;
  /** The error code the gateway answers with (gateway rows). */
  code?: string;
  /** The error's param (gateway rows), when it must name a field. */
  param?: string;
  by: 'gateway' | 'upstream';
}

export interface HostileRequest {
  name: string;
  category: Category;
  key: KeyKind;
  method?: string;
  path?: string;
  /** Extra request headers (fetch rows). */
  headers?: Record<string, string>;
  /** Content-Type of a body (fetch rows; default application/json; null: none). */
  contentType?: string | null;
  body?: string | Buffer;
  /** The whole request as sent over a socket (see the top of the file). */
  raw?: string;
  /** The client stops sending before its request is complete and waits (a slow client). */
  stalls?: boolean;
  expect: Expected;
}

/** The gateway the corpus runs against (besides the test helpers' defaults). */
export const MAX_BODY = 256 * 1024;
export const CORPUS_ENV: Record<string, string> = {
  PROXYGPT_MAX_BODY_BYTES: String(MAX_BODY),
  PROXYGPT_ALLOWED_ENDPOINTS:
    'POST /v1/chat/completions, POST /v1/embeddings, POST /v1/responses, POST /v1/completions, GET /v1/models, GET /v1/models/*, POST /v1/audio/transcriptions',
  PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small, whisper-1',
  USE_HOURLY_RATE_LIMIT: 'true',
  PROXYGPT_HOURLY_RATE_LIMIT: '100000',
  PROXYGPT_REQUEST_TIMEOUT_MS: '1500',
  PROXYGPT_LEGACY_MODEL: 'gpt-4o-mini',
};
/** The stored key's policy: token and spend limits, so its budget fields are checked. */
export const STORED_KEY_POLICY = { name: 'corpus-metered', tokens_per_hour: 1_000_000, usd_per_day: 1000 };

export const CHAT = '/v1/chat/completions';
export const MESSAGES = '[{"role":"user","content":"hi there"}]';
/** A chat body with `extra` (raw JSON text) as its last members, so numbers arrive as written. */
export const chat = (extra = '') => `{"model":"gpt-4o-mini","messages":${MESSAGES}${extra === '' ? '' : `,${extra}`}}`;
export const arrays = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
export const objects = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);

export const gateway = (status: number, code?: string, param?: string): Expected => ({ status, code, param, by: 'gateway' });
export const upstream = (status = 200): Expected => ({ status, by: 'upstream' });

/** A raw HTTP/1.1 request with a correct Content-Length (the body as UTF-8), `{{AUTH}}` and Connection: close. */
export function raw(method: string, target: string, body: string | null, extraHeaders = '', contentType = 'application/json'): string {
  const bytes = body === null ? '' : Buffer.from(body, 'utf8').toString('latin1');
  const framing = body === null ? '' : `Content-Type: ${contentType}\r\nContent-Length: ${bytes.length}\r\n`;
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{{AUTH}}${framing}${extraHeaders}Connection: close\r\n\r\n${bytes}`;
}
/** The same with a body given as bytes (a Latin-1 string: one character per byte), for bytes UTF-8 cannot hold. */
export function rawBytes(method: string, target: string, bytes: string): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{{AUTH}}Content-Type: application/json\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n${bytes}`;
}
export const rawGet = (target: string, extraHeaders = '') => raw('GET', target, null, extraHeaders);
/** A chunked body: `chunks` as given (each its size line), then the last chunk. */
export const chunked = (chunks: string[]) => chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n';

/** A multipart/form-data body with `parts` ([name, value] text fields, or a file part). */
export function multipart(boundary: string, parts: { name: string; value: string; filename?: string }[]): string {
  const lines = parts.map(
    (p) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"\r\nContent-Type: audio/wav`}\r\n\r\n${p.value}\r\n`,
  );
  return `${lines.join('')}--${boundary}--\r\n`;
}
export const FILE = { name: 'file', value: 'RIFF....WAVEfmt ', filename: 'clip.wav' };
