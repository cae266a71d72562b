/**
 * Configuration: turns environment variables (the original ProxyGPT's names plus ours) into one
 * validated, immutable Config. Every problem names the variable and says what is wrong, so a bad
 * deployment fails at start instead of at the first request. Reading one variable is in
 * config-values.ts; the store and limiter choice in config-backends.ts.
 */
import { z } from 'zod';
import { bool, ConfigError, int, list, nonNegativeInt, optionalInt, raw, unquote, type Env } from './config-values.js';
import { database, limiter } from './config-backends.js';
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

export { ConfigError, unquote } from './config-values.js';

export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

const METHODS = new Set<HttpMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const MIN_PROXY_KEY_LENGTH = 16;

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
