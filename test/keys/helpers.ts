/**
 * Helpers for the stored-key, admin and metering tests: a gateway with the admin API on, admin
 * calls, key creation, proxied calls with a stored key, /ratelimit, and reading the database the
 * gateway writes (usage records, the api_keys table).
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startGateway, type GatewayOptions, type TestGateway } from '../helpers.js';

export const ADMIN_KEY = 'admin-key-for-tests-0123456789abcdef';

export interface HttpResult<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A gateway with PROXYGPT_ADMIN_KEY set (and quiet logs); `env` adds or overrides variables. */
export function startAdminGateway(env: Record<string, string> = {}, options: Omit<GatewayOptions, 'env'> = {}): Promise<TestGateway> {
  return startGateway({ env: { PROXYGPT_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'warn', ...env }, ...options });
}

async function result<T>(res: Response): Promise<HttpResult<T>> {
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, body: body as T, text };
}

/** One admin API call with the admin key (or `auth`: a full Authorization value, or null for none). */
export async function admin<T = Record<string, unknown>>(
  gw: { url: string },
  method: string,
  path: string,
  body?: unknown,
  auth: string | null = `Bearer ${ADMIN_KEY}`,
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw.url}/admin${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return result<T>(res);
}

export interface CreatedKey {
  id: string;
  name: string;
  key: string;
  [field: string]: unknown;
}

/** Creates a stored key through the admin API and returns its view plus the secret (`key`). */
export async function createKey(gw: { url: string }, body: Record<string, unknown>): Promise<CreatedKey> {
  const res = await admin<CreatedKey>(gw, 'POST', '/keys', body);
  expect(res.status, res.text).toBe(201);
  expect(res.body.key).toMatch(/^pgpt-/);
  return res.body;
}

export interface CallOptions {
  path?: string;
  method?: string;
  body?: Record<string, unknown> | string | null;
  headers?: Record<string, string>;
}

export const chatRequest = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'hi there' }],
  ...extra,
});

/** A proxied call with `key` (default: a chat completion with the mock's defaults). */
export async function call(gw: { url: string }, key: string, options: CallOptions = {}): Promise<HttpResult> {
  const method = options.method ?? 'POST';
  const body = options.body === undefined ? chatRequest() : options.body;
  const res = await fetch(`${gw.url}${options.path ?? '/v1/chat/completions'}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === null ? {} : { 'content-type': 'application/json' }), ...options.headers },
    body: body === null ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return result(res);
}

export interface LimitView {
  limit: number;
  used: number;
  remaining: number;
  reset_seconds: number;
}

export interface RateLimitBody {
  key?: { id: string; name: string; expires_at: string | null; limits: Record<string, LimitView> };
  [field: string]: unknown;
}

export async function rateLimit(gw: { url: string }, key: string): Promise<HttpResult<RateLimitBody>> {
  return result<RateLimitBody>(await fetch(`${gw.url}/ratelimit`, { headers: { authorization: `Bearer ${key}` } }));
}

/** Polls `read` every 10 ms until `check` accepts its value (at most `ms`); returns the last value. */
export async function eventually<T>(what: string, read: () => Promise<T> | T, check: (value: T) => boolean, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Waits until the key's limit `name` shows `used` with nothing held any more (the previous calls
 * are settled), then returns the view. Settling runs right after the last byte went out, so a
 * client can be a hair faster than it.
 */
export async function settledUsage(gw: { url: string }, key: string, name: string, used: number): Promise<LimitView> {
  const body = await eventually(
    `${name}.used is ${used}`,
    async () => (await rateLimit(gw, key)).body,
    (b) => b.key?.limits[name]?.used === used,
  );
  return body.key!.limits[name]!;
}

/** Opens the gateway's SQLite file read-only (WAL: sees what the gateway committed). */
export function openDb(gw: TestGateway): Database.Database {
  return new Database(join(gw.dir, 'proxygpt.db'), { readonly: true, fileMustExist: true });
}

export interface UsageRow {
  ts: number;
  principal: string;
  path: string;
  model: string | null;
  status: number;
  stream: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micro_usd: number;
  estimated: number;
}

/** Waits until `count` usage records of `principal` are written, and returns them (oldest first). */
export async function usageRows(gw: TestGateway, principal: string, count: number): Promise<UsageRow[]> {
  return eventually(
    `${count} usage records of ${principal} are written`,
    async () => {
      await gw.app.recorder.flush();
      const db = openDb(gw);
      try {
        return db.prepare('SELECT * FROM usage_events WHERE principal = ? ORDER BY id').all(principal) as UsageRow[];
      } finally {
        db.close();
      }
    },
    (rows) => rows.length >= count,
  );
}
