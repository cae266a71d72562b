/**
 * Where the gateway keeps things: the store (PROXYGPT_DATABASE_URL: a SQLite file, or Postgres for
 * several instances) and the limiter (PROXYGPT_LIMITER, PROXYGPT_REDIS_URL and its settings),
 * checked against each other: several instances share exact limits only through Redis.
 */
import { z } from 'zod';
import { redactUrl } from './url-secrets.js';
import { ConfigError, int, raw, unquote, type Env } from './config-values.js';
import type { DatabaseConfig, LimiterConfig } from './config.js';

/**
 * A server URL of one of `schemes` (`postgres:`), with a host. Errors name the variable and show
 * the URL with its password redacted.
 */
function serverUrl(name: string, value: string, schemes: readonly string[], example: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, `is not a valid URL (got ${JSON.stringify(redactUrl(value))}); expected ${example}`);
  }
  if (!schemes.includes(url.protocol.toLowerCase())) {
    throw new ConfigError(name, `must start with ${schemes.map((s) => `${s}//`).join(' or ')} (got ${JSON.stringify(redactUrl(value))})`);
  }
  // libpq's `?host=` (e.g. a Unix socket directory) names the host too.
  if (url.hostname === '' && !url.searchParams.has('host')) {
    throw new ConfigError(name, `names no host (got ${JSON.stringify(redactUrl(value))}); expected ${example}`);
  }
  return value;
}

/** A SQLite file as a path or `sqlite:path`; other schemes are refused. */
function sqlitePath(name: string, value: string, others: string): string {
  if (/^sqlite:/i.test(value)) {
    const path = value.replace(/^sqlite:(\/\/)?/i, '');
    if (path === '') throw new ConfigError(name, 'sqlite: URL names no file');
    return path;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new ConfigError(name, `unsupported scheme (got ${JSON.stringify(redactUrl(value))}); use ${others}`);
  }
  return value;
}

export function database(env: Env): DatabaseConfig {
  const value = unquote(raw(env, 'PROXYGPT_DATABASE_URL') ?? './data/proxygpt.db');
  if (/^postgres(ql)?:/i.test(value)) {
    return { kind: 'postgres', url: serverUrl('PROXYGPT_DATABASE_URL', value, ['postgres:', 'postgresql:'], 'postgres://user:password@host:5432/database') };
  }
  return { kind: 'sqlite', path: sqlitePath('PROXYGPT_DATABASE_URL', value, 'a file path, sqlite:path or postgres://…') };
}

/**
 * The limiter, from PROXYGPT_REDIS_URL (set: Redis) and PROXYGPT_LIMITER (memory | sqlite | redis),
 * checked against the store: a Postgres store is there for several instances, and they share
 * exact limits only through Redis, so Postgres without Redis needs an explicit
 * PROXYGPT_LIMITER=memory (one instance, journaled to PROXYGPT_LIMITS_PATH).
 */
export function limiter(env: Env, store: DatabaseConfig, warnings: string[]): LimiterConfig {
  const chosen = raw(env, 'PROXYGPT_LIMITER') === undefined ? undefined : unquote(raw(env, 'PROXYGPT_LIMITER')!).toLowerCase();
  if (chosen !== undefined && chosen !== 'memory' && chosen !== 'sqlite' && chosen !== 'redis') {
    throw new ConfigError('PROXYGPT_LIMITER', `must be "memory", "sqlite" or "redis" (got ${JSON.stringify(chosen)})`);
  }
  const redisValue = raw(env, 'PROXYGPT_REDIS_URL');
  const failModeValue = raw(env, 'PROXYGPT_REDIS_FAIL_MODE');
  const failMode = unquote(failModeValue ?? 'closed').toLowerCase();
  if (failMode !== 'closed' && failMode !== 'open') {
    throw new ConfigError('PROXYGPT_REDIS_FAIL_MODE', `must be "closed" or "open" (got ${JSON.stringify(failMode)})`);
  }
  const timeoutMs = int(env, 'PROXYGPT_REDIS_TIMEOUT_MS', 500, z.coerce.number().int().positive().max(600_000));
  const limitsPath = raw(env, 'PROXYGPT_LIMITS_PATH');

  if (redisValue !== undefined) {
    if (chosen === 'memory' || chosen === 'sqlite') {
      throw new ConfigError('PROXYGPT_LIMITER', `"${chosen}" contradicts PROXYGPT_REDIS_URL, which selects the Redis limiter; unset one of them`);
    }
    if (limitsPath !== undefined) warnings.push('PROXYGPT_LIMITS_PATH is ignored: the Redis limiter keeps no local journal');
    const url = serverUrl('PROXYGPT_REDIS_URL', unquote(redisValue), ['redis:', 'rediss:'], 'redis://[:password@]host:6379[/db] or rediss://… for TLS');
    const prefix = unquote(raw(env, 'PROXYGPT_REDIS_PREFIX') ?? 'proxygpt:');
    if (!/^[A-Za-z0-9:_.{}-]{1,64}$/.test(prefix)) {
      throw new ConfigError('PROXYGPT_REDIS_PREFIX', `must be 1-64 letters, digits or : _ . - { } (got ${JSON.stringify(prefix)})`);
    }
    return { kind: 'redis', url, failMode, timeoutMs, prefix };
  }
  if (chosen === 'redis') throw new ConfigError('PROXYGPT_REDIS_URL', 'must be set when PROXYGPT_LIMITER=redis (e.g. redis://127.0.0.1:6379)');
  for (const name of ['PROXYGPT_REDIS_FAIL_MODE', 'PROXYGPT_REDIS_TIMEOUT_MS', 'PROXYGPT_REDIS_PREFIX']) {
    if (raw(env, name) !== undefined) warnings.push(`${name} is ignored: PROXYGPT_REDIS_URL is not set`);
  }

  if (store.kind === 'postgres') {
    if (chosen === undefined) {
      throw new ConfigError(
        'PROXYGPT_REDIS_URL',
        'is required with a Postgres store (PROXYGPT_DATABASE_URL=postgres://…): a Postgres store is for several instances, ' +
          'and several instances need Redis to share their limits (each would otherwise allow the full limit on its own). ' +
          'Set PROXYGPT_REDIS_URL, or PROXYGPT_LIMITER=memory to run a single instance',
      );
    }
    if (chosen === 'sqlite') {
      throw new ConfigError(
        'PROXYGPT_LIMITER',
        '"sqlite" needs a SQLite store; with PROXYGPT_DATABASE_URL=postgres://… set PROXYGPT_REDIS_URL (several instances) or PROXYGPT_LIMITER=memory (a single instance)',
      );
    }
    const journalPath = sqlitePath('PROXYGPT_LIMITS_PATH', unquote(limitsPath ?? './data/limits.db'), 'a file path or sqlite:path');
    return { kind: 'memory', journalPath };
  }
  if (limitsPath !== undefined) {
    warnings.push('PROXYGPT_LIMITS_PATH is ignored: with a SQLite store the limits are kept in its file (PROXYGPT_DATABASE_URL)');
  }
  return chosen === 'sqlite' ? { kind: 'sqlite', path: store.path } : { kind: 'memory', journalPath: store.path };
}
