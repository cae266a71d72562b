/**
 * Configuration: turns environment variables (the original ProxyGPT's names plus ours) into one
 * validated, immutable Config. Every problem names the variable and says what is wrong, so a bad
 * deployment fails at start instead of at the first request.
 */
import { z } from 'zod';
import { redactUrl } from './url-secrets.js';
import { readUpstreamsFile, UpstreamsFileError } from './upstreams/file.js';
import { singleUpstream, type UpstreamsConfig } from './upstreams/spec.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** An allowed upstream endpoint: an exact path, or a prefix when `path` ends with `/*`. */
export interface EndpointRule {
  method: HttpMethod;
  path: string;
}

export type CountMode = 'all' | 'success';

/** Who may read /metrics: the admin key's holder, anyone, or nobody (404). */
export type MetricsMode = 'admin' | 'open' | 'off';

/**
 * Where keys, usage and prices are kept: the embedded SQLite file (one host), or Postgres (shared
 * by several instances). `url` keeps its password: print it only through `redactUrl`.
 */
export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * Where limits are decided. memory: this gateway (its cluster primary with several workers) is the
 * only process counting these limits and decides in memory, journaled to the SQLite file
 * `journalPath`. sqlite: every process decides in a transaction on the SQLite file `path`, so
 * several gateway processes on one host (an overlapping redeploy, two containers on one volume)
 * can share it. redis: every instance decides in Redis, so several machines share exact limits;
 * `failMode` says what a call gets while Redis is unreachable (closed: 503; open: served), and
 * `timeoutMs` bounds how long a call waits for Redis. `url` keeps its password: see `redactUrl`.
 */
export type LimiterConfig =
  | { kind: 'memory'; journalPath: string }
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string; failMode: 'closed' | 'open'; timeoutMs: number; prefix: string };

export interface Config {
  /** OPENAI_API_KEY ('' when unset, as it may be with an upstreams file). */
  openaiApiKey: string;
  openaiBaseUrl: URL;
  /** Where calls go: the upstreams file (PROXYGPT_UPSTREAMS), or the one upstream of OPENAI_*. */
  upstreams: UpstreamsConfig;
  proxyKeys: string[];
  hourlyRateLimit: number | null;
  dailyRateLimit: number | null;
  countMode: CountMode;
  insecureDebug: boolean;
  port: number;
  host: string;
  database: DatabaseConfig;
  adminKey: string | null;
  allowedEndpoints: EndpointRule[];
  allowedModels: string[] | null;
  corsOrigins: string[];
  workers: number;
  limiter: LimiterConfig;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  /**
   * Longest a client may take to send a whole request (headers and body). Covers receiving only:
   * an answer, a stream included, may take as long as it needs.
   */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open for the client's next request. */
  keepAliveTimeoutMs: number;
  legacyModel: string;
  trustProxy: boolean;
  /** Completion budget assumed when a request names no max_tokens (token and spend reservations). */
  defaultMaxTokens: number;
  /** Calls in flight at once for the whole gateway (all workers, all instances); null: no cap. */
  maxConcurrent: number | null;
  /** Open client connections per process; past it new connections are refused. null: no cap. */
  maxConnections: number | null;
  /** On SIGTERM: how long calls in flight and open streams may go on before they are cut short. */
  shutdownGraceMs: number;
  /** /metrics: `admin` (needs the admin key; 404 without one configured), `open` or `off` (404). */
  metrics: MetricsMode;
}

/** Raised for any invalid setting; `variable` is the environment variable at fault. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

const METHODS = new Set<HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const MIN_PROXY_KEY_LENGTH = 16;

type Env = Record<string, string | undefined>;

/** The variable's value without surrounding spaces and quotes; undefined when unset or empty (`""` too). */
function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = unquote(value);
  return trimmed === '' ? undefined : trimmed;
}

/** Strips surrounding spaces and one pair of matching quotes, as `.env` files often carry them. */
export function unquote(value: string): string {
  let v = value.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) v = v.slice(1, -1).trim();
  return v.replace(/^["']+|["']+$/g, '').trim();
}

function list(env: Env, name: string): string[] {
  const value = raw(env, name);
  if (value === undefined) return [];
  return unquote(value)
    .split(',')
    .map(unquote)
    .filter((item) => item !== '');
}

function parseWith<T>(name: string, schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ConfigError(name, `${what} (got ${JSON.stringify(value)})`);
  return result.data;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const v = unquote(value).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `must be true or false (got ${JSON.stringify(value)})`);
}

const positiveInt = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegativeInt = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

function int(env: Env, name: string, fallback: number, schema: z.ZodType<number> = positiveInt): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(unquote(value))) throw new ConfigError(name, `must be a whole number (got ${JSON.stringify(value)})`);
  return parseWith(name, schema, unquote(value), 'is out of range');
}

/** A positive whole number, or null when unset. */
function optionalInt(env: Env, name: string): number | null {
  return raw(env, name) === undefined ? null : int(env, name, 0);
}

function rateLimit(env: Env, useName: string, limitName: string): number | null {
  if (!bool(env, useName, false)) return null;
  const value = raw(env, limitName);
  if (value === undefined) throw new ConfigError(limitName, `must be set when ${useName} is true`);
  const v = unquote(value);
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new ConfigError(limitName, `must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return Number(v);
}

function baseUrl(env: Env): URL {
  const value = unquote(raw(env, 'OPENAI_BASE_URL') ?? 'https://api.openai.com/v1');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('OPENAI_BASE_URL', `is not a valid URL (got ${JSON.stringify(value)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('OPENAI_BASE_URL', `must be an http(s) URL (got ${JSON.stringify(value)})`);
  }
  if (url.username || url.password) throw new ConfigError('OPENAI_BASE_URL', 'must not contain credentials');
  url.pathname = url.pathname.replace(/\/+$/, '');
  url.search = '';
  url.hash = '';
  return url;
}

/** Parses `POST /v1/chat/completions, GET /v1/models/*` into rules. */
export function parseEndpoints(text: string, name = 'PROXYGPT_ALLOWED_ENDPOINTS'): EndpointRule[] {
  const rules: EndpointRule[] = [];
  for (const item of text.split(',').map(unquote).filter(Boolean)) {
    const match = /^([A-Za-z]+)\s+(\/v1(?:\/[A-Za-z0-9._~:@!$&'()+=-]+)*(?:\/\*)?)$/.exec(item);
    const method = match?.[1]?.toUpperCase() as HttpMethod | undefined;
    if (!match || !method || !METHODS.has(method) || match[2]!.split('/').includes('..')) {
      throw new ConfigError(name, `entry ${JSON.stringify(item)} must look like "POST /v1/chat/completions" (methods: ${[...METHODS].join(', ')}; a trailing /* allows a prefix)`);
    }
    if (!rules.some((r) => r.method === method && r.path === match[2])) rules.push({ method, path: match[2]! });
  }
  if (rules.length === 0) throw new ConfigError(name, 'lists no endpoint');
  return rules;
}

/**
 * Browser origins as browsers send them (`https://app.example.com`, no path): a trailing slash is
 * dropped and the host lower-cased, anything else that is not an origin is an error, since it
 * would never match and CORS would fail without a clue.
 */
function corsOrigins(env: Env): string[] {
  return list(env, 'PROXYGPT_CORS_ORIGINS').map((item) => {
    if (item === '*') return item;
    let url: URL | null = null;
    try {
      url = new URL(item);
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.hash || url.username) {
      throw new ConfigError('PROXYGPT_CORS_ORIGINS', `entry ${JSON.stringify(item)} must be an origin like https://app.example.com (or *)`);
    }
    return url.origin;
  });
}

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

function database(env: Env): DatabaseConfig {
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
function limiter(env: Env, store: DatabaseConfig, warnings: string[]): LimiterConfig {
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

/**
 * The upstreams: the file PROXYGPT_UPSTREAMS names (then the whole truth: OPENAI_API_KEY and
 * OPENAI_BASE_URL are not used), or else the one upstream of OPENAI_API_KEY (required) and
 * OPENAI_BASE_URL.
 */
function upstreamsOf(env: Env, openaiApiKey: string | undefined, warnings: string[]): UpstreamsConfig {
  const file = raw(env, 'PROXYGPT_UPSTREAMS');
  if (file === undefined) {
    if (openaiApiKey === undefined) throw new ConfigError('OPENAI_API_KEY', 'is required (the upstream API key), unless PROXYGPT_UPSTREAMS names an upstreams file');
    return singleUpstream(baseUrl(env), unquote(openaiApiKey));
  }
  try {
    const upstreams = readUpstreamsFile(unquote(file), env);
    const referenced = new Set(upstreams.upstreams.flatMap((u) => u.keys.map((k) => k.source)));
    for (const name of ['OPENAI_API_KEY', 'OPENAI_BASE_URL']) {
      if (raw(env, name) !== undefined && !referenced.has(name)) warnings.push(`${name} is ignored: PROXYGPT_UPSTREAMS names the upstreams`);
    }
    return upstreams;
  } catch (err) {
    if (err instanceof UpstreamsFileError) throw new ConfigError('PROXYGPT_UPSTREAMS', err.message);
    throw err;
  }
}

/** Reads and validates the whole configuration. Throws ConfigError on the first problem. */
export function loadConfig(env: Env = process.env): LoadedConfig {
  const warnings: string[] = [];

  const openaiApiKey = raw(env, 'OPENAI_API_KEY');
  const upstreams = upstreamsOf(env, openaiApiKey, warnings);
  const upstreamKeys = new Set(upstreams.upstreams.flatMap((u) => u.keys.map((k) => k.secret)));

  const keySources = new Map<string, string>();
  for (const name of ['PROXYGPT_API_KEY', 'PROXYGPT_API_KEYS']) {
    for (const key of list(env, name)) if (!keySources.has(key)) keySources.set(key, name);
  }
  const proxyKeys = [...keySources.keys()];
  if (proxyKeys.length === 0 && raw(env, 'PROXYGPT_ADMIN_KEY') === undefined) {
    throw new ConfigError(
      'PROXYGPT_API_KEY',
      'set PROXYGPT_API_KEY or PROXYGPT_API_KEYS to at least one proxy key (or PROXYGPT_ADMIN_KEY to create stored keys)',
    );
  }
  proxyKeys.forEach((key, i) => {
    const name = keySources.get(key)!;
    // A client sends the key as `Authorization: Bearer <key>`: a key with spaces, control or
    // non-ASCII characters could never match, and would lock its users out without a word.
    if (!/^[\x21-\x7e]+$/.test(key)) {
      throw new ConfigError(name, `proxy key #${i + 1} may only contain printable ASCII characters without spaces`);
    }
    if (key.length < MIN_PROXY_KEY_LENGTH) {
      warnings.push(`proxy key #${i + 1} is shorter than ${MIN_PROXY_KEY_LENGTH} characters and easy to guess; use a long random key`);
    }
    if (upstreamKeys.has(key) || key === openaiApiKey) {
      throw new ConfigError(name, upstreams.file === null ? 'a proxy key must not equal OPENAI_API_KEY' : 'a proxy key must not equal an upstream key');
    }
  });

  const countMode = unquote(raw(env, 'PROXYGPT_RATE_LIMIT_COUNT') ?? 'all').toLowerCase();
  if (countMode !== 'all' && countMode !== 'success') {
    throw new ConfigError('PROXYGPT_RATE_LIMIT_COUNT', `must be "all" or "success" (got ${JSON.stringify(countMode)})`);
  }

  const allowedModels = list(env, 'PROXYGPT_ALLOWED_MODELS');
  const logLevel = unquote(raw(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`);
  }
  const store = database(env);
  const limits = limiter(env, store, warnings);
  const adminKey = raw(env, 'PROXYGPT_ADMIN_KEY');
  const metricsValue = raw(env, 'PROXYGPT_METRICS');
  const metrics = unquote(metricsValue ?? 'admin').toLowerCase();
  if (metrics !== 'admin' && metrics !== 'open' && metrics !== 'off') {
    throw new ConfigError('PROXYGPT_METRICS', `must be "admin", "open" or "off" (got ${JSON.stringify(metricsValue)})`);
  }
  if (metricsValue !== undefined && metrics === 'admin' && adminKey === undefined) {
    warnings.push('PROXYGPT_METRICS=admin needs PROXYGPT_ADMIN_KEY: without it /metrics answers 404');
  }

  const config: Config = {
    openaiApiKey: openaiApiKey === undefined ? '' : unquote(openaiApiKey),
    openaiBaseUrl: baseUrl(env),
    upstreams,
    proxyKeys,
    hourlyRateLimit: rateLimit(env, 'USE_HOURLY_RATE_LIMIT', 'PROXYGPT_HOURLY_RATE_LIMIT'),
    dailyRateLimit: rateLimit(env, 'USE_DAILY_RATE_LIMIT', 'PROXYGPT_DAILY_RATE_LIMIT'),
    countMode,
    insecureDebug: bool(env, 'INSECURE_DEBUG', false),
    port: int(env, 'PORT', 8000, z.coerce.number().int().min(0).max(65535)),
    host: unquote(raw(env, 'HOST') ?? '127.0.0.1'),
    database: store,
    adminKey: adminKey === undefined ? null : unquote(adminKey),
    allowedEndpoints: parseEndpoints(raw(env, 'PROXYGPT_ALLOWED_ENDPOINTS') ?? 'POST /v1/chat/completions'),
    allowedModels: allowedModels.length === 0 || allowedModels.includes('*') ? null : allowedModels,
    corsOrigins: corsOrigins(env),
    workers: int(env, 'PROXYGPT_WORKERS', 1, z.coerce.number().int().min(1).max(256)),
    limiter: limits,
    logLevel: logLevel as Config['logLevel'],
    maxBodyBytes: int(env, 'PROXYGPT_MAX_BODY_BYTES', 10 * 1024 * 1024),
    upstreamTimeoutMs: int(env, 'PROXYGPT_UPSTREAM_TIMEOUT_MS', 600_000),
    requestTimeoutMs: int(env, 'PROXYGPT_REQUEST_TIMEOUT_MS', 60_000),
    keepAliveTimeoutMs: int(env, 'PROXYGPT_KEEPALIVE_TIMEOUT_MS', 72_000),
    legacyModel: unquote(raw(env, 'PROXYGPT_LEGACY_MODEL') ?? 'gpt-3.5-turbo'),
    trustProxy: bool(env, 'PROXYGPT_TRUST_PROXY', false),
    defaultMaxTokens: int(env, 'PROXYGPT_DEFAULT_MAX_TOKENS', 1024),
    maxConcurrent: optionalInt(env, 'PROXYGPT_MAX_CONCURRENT'),
    maxConnections: optionalInt(env, 'PROXYGPT_MAX_CONNECTIONS'),
    shutdownGraceMs: int(env, 'PROXYGPT_SHUTDOWN_GRACE_MS', 20_000, nonNegativeInt),
    metrics,
  };
  if (config.adminKey !== null && config.adminKey.length < MIN_PROXY_KEY_LENGTH) {
    warnings.push(`PROXYGPT_ADMIN_KEY is shorter than ${MIN_PROXY_KEY_LENGTH} characters and easy to guess; use a long random key`);
  }
  if (config.adminKey !== null && config.proxyKeys.includes(config.adminKey)) {
    throw new ConfigError('PROXYGPT_ADMIN_KEY', 'must differ from every proxy key');
  }
  return { config, warnings };
}

/** What the CLI's direct mode needs to manage stored keys: no upstream key, no proxy keys. */
export interface AdminConfig {
  database: DatabaseConfig;
  allowedEndpoints: EndpointRule[];
  allowedModels: string[] | null;
}

/**
 * Reads only the settings that key administration on the database itself depends on (the
 * database and the gateway's own endpoint and model lists, which bound every key's policy),
 * with the same rules as loadConfig. Throws ConfigError on the first problem; OPENAI_API_KEY and
 * the proxy keys are not required.
 */
export function loadAdminConfig(env: Env = process.env): AdminConfig {
  const allowedModels = list(env, 'PROXYGPT_ALLOWED_MODELS');
  return {
    database: database(env),
    allowedEndpoints: parseEndpoints(raw(env, 'PROXYGPT_ALLOWED_ENDPOINTS') ?? 'POST /v1/chat/completions'),
    allowedModels: allowedModels.length === 0 || allowedModels.includes('*') ? null : allowedModels,
  };
}
