/**
 * Configuration of the store and the limiter as unions: PROXYGPT_DATABASE_URL (SQLite file or
 * postgres://), PROXYGPT_REDIS_URL with its fail mode and timeout, PROXYGPT_LIMITER and
 * PROXYGPT_LIMITS_PATH, and the rules that tie them together (Postgres is for several instances,
 * so it needs Redis unless a single instance is asked for). Errors name the variable and never
 * show a password; the passwords reach the redactor.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadAdminConfig, loadConfig } from '../src/config.js';
import { redactUrl, urlPasswords } from '../src/url-secrets.js';
import { secretsOf } from '../src/app.js';
import { KEY, UPSTREAM } from './config-helpers.js';

const base = (extra: Record<string, string | undefined> = {}) => ({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: KEY, ...extra });
const PG = 'postgres://gateway:pg-secret-9f8e@db.internal:5432/proxygpt';
const REDIS = 'redis://:redis-secret-7a6b@cache.internal:6379/0';

function rejected(env: Record<string, string | undefined>, variable: string): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  expect(err.variable).toBe(variable);
  expect(err.message.startsWith(`${variable}: `)).toBe(true);
  return err;
}

describe('PROXYGPT_DATABASE_URL', () => {
  it('a Postgres URL (postgres:// or postgresql://) selects the Postgres store, kept whole for the driver', () => {
    expect(loadConfig(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_REDIS_URL: REDIS })).config.database).toEqual({ kind: 'postgres', url: PG });
    const long = 'postgresql://gateway:pg-secret-9f8e@10.0.0.5/proxygpt?sslmode=require';
    expect(loadConfig(base({ PROXYGPT_DATABASE_URL: ` "${long}" `, PROXYGPT_REDIS_URL: REDIS })).config.database).toEqual({ kind: 'postgres', url: long });
  });

  it('a Postgres URL may name its host in ?host= (a Unix socket directory)', () => {
    const socket = 'postgres:///proxygpt?host=/var/run/postgresql';
    expect(loadConfig(base({ PROXYGPT_DATABASE_URL: socket, PROXYGPT_REDIS_URL: REDIS })).config.database).toEqual({ kind: 'postgres', url: socket });
  });

  it.each([
    ['no host', 'postgres:///proxygpt', /names no host/],
    // (WHATWG URLs refuse credentials without a host outright.)
    ['no host and a password', 'postgres://gateway:pg-secret-9f8e@/proxygpt', /is not a valid URL/],
    ['not a URL', 'postgres://gateway:pg-secret-9f8e@[db/proxygpt', /is not a valid URL/],
    ['an opaque form', 'postgresql:proxygpt', /names no host/],
  ])('a Postgres URL with %s is refused, naming the variable and hiding the password', (_what, url, problem) => {
    const err = rejected(base({ PROXYGPT_DATABASE_URL: url, PROXYGPT_REDIS_URL: REDIS }), 'PROXYGPT_DATABASE_URL');
    expect(err.message).toMatch(problem);
    expect(err.message).not.toContain('pg-secret-9f8e');
  });

  it('a SQLite path or sqlite: URL stays the SQLite store, and the memory limiter journals into it', () => {
    for (const [value, path] of [['/srv/proxygpt.db', '/srv/proxygpt.db'], ['sqlite:./data/x.db', './data/x.db'], ['sqlite:///abs/x.db', '/abs/x.db']] as const) {
      const { config } = loadConfig(base({ PROXYGPT_DATABASE_URL: value }));
      expect(config.database).toEqual({ kind: 'sqlite', path });
      expect(config.limiter).toEqual({ kind: 'memory', journalPath: path });
    }
  });

  it('loadAdminConfig (the CLI) takes a Postgres URL without asking for Redis: it decides no limits', () => {
    expect(loadAdminConfig({ PROXYGPT_DATABASE_URL: PG }).database).toEqual({ kind: 'postgres', url: PG });
    expect(loadAdminConfig({}).database).toEqual({ kind: 'sqlite', path: './data/proxygpt.db' });
  });
});

describe('Postgres needs Redis to share limits, unless one instance is asked for', () => {
  it('Postgres without PROXYGPT_REDIS_URL is refused on PROXYGPT_REDIS_URL, saying why and how out', () => {
    const err = rejected(base({ PROXYGPT_DATABASE_URL: PG }), 'PROXYGPT_REDIS_URL');
    expect(err.message).toMatch(/several instances need Redis to share their limits/);
    expect(err.message).toContain('PROXYGPT_LIMITER=memory');
    expect(err.message).not.toContain('pg-secret-9f8e');
  });

  it('Postgres with PROXYGPT_LIMITER=memory: one instance, journaled to PROXYGPT_LIMITS_PATH (default ./data/limits.db)', () => {
    expect(loadConfig(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_LIMITER: 'memory' })).config.limiter).toEqual({ kind: 'memory', journalPath: './data/limits.db' });
    const set = loadConfig(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_LIMITER: 'Memory', PROXYGPT_LIMITS_PATH: '/var/lib/proxygpt/limits.db' }));
    expect(set.config.limiter).toEqual({ kind: 'memory', journalPath: '/var/lib/proxygpt/limits.db' });
    expect(set.warnings).toEqual([]);
    expect(loadConfig(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_LIMITER: 'memory', PROXYGPT_LIMITS_PATH: 'sqlite:/l.db' })).config.limiter).toEqual({
      kind: 'memory',
      journalPath: '/l.db',
    });
  });

  it('PROXYGPT_LIMITS_PATH must be a file, not another server', () => {
    const err = rejected(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_LIMITER: 'memory', PROXYGPT_LIMITS_PATH: 'redis://cache/1' }), 'PROXYGPT_LIMITS_PATH');
    expect(err.message).toMatch(/unsupported scheme/);
  });

  it('Postgres with PROXYGPT_LIMITER=sqlite is refused: that limiter lives in a SQLite store', () => {
    const err = rejected(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_LIMITER: 'sqlite' }), 'PROXYGPT_LIMITER');
    expect(err.message).toMatch(/needs a SQLite store/);
    expect(err.message).toContain('PROXYGPT_REDIS_URL');
  });

  it('PROXYGPT_LIMITS_PATH is ignored with a SQLite store (the limits stay in its file), with a warning', () => {
    const { config, warnings } = loadConfig(base({ PROXYGPT_DATABASE_URL: '/srv/g.db', PROXYGPT_LIMITS_PATH: '/srv/limits.db' }));
    expect(config.limiter).toEqual({ kind: 'memory', journalPath: '/srv/g.db' });
    expect(warnings).toEqual(['PROXYGPT_LIMITS_PATH is ignored: with a SQLite store the limits are kept in its file (PROXYGPT_DATABASE_URL)']);
  });
});

describe('PROXYGPT_REDIS_URL and its settings', () => {
  it('selects the Redis limiter: fail closed and a 500 ms timeout by default', () => {
    expect(loadConfig(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_REDIS_URL: REDIS })).config.limiter).toEqual({
      kind: 'redis',
      url: REDIS,
      failMode: 'closed',
      timeoutMs: 500,
      prefix: 'proxygpt:',
    });
  });

  it('works with the SQLite store too, and with rediss:// (TLS) and PROXYGPT_LIMITER=redis', () => {
    const tls = 'rediss://default:redis-secret-7a6b@cache.example.com:6380';
    const { config } = loadConfig(base({ PROXYGPT_REDIS_URL: tls, PROXYGPT_LIMITER: 'redis' }));
    expect(config.database).toEqual({ kind: 'sqlite', path: './data/proxygpt.db' });
    expect(config.limiter).toEqual({ kind: 'redis', url: tls, failMode: 'closed', timeoutMs: 500, prefix: 'proxygpt:' });
  });

  it('PROXYGPT_REDIS_FAIL_MODE (closed | open) and PROXYGPT_REDIS_TIMEOUT_MS are read', () => {
    const { config } = loadConfig(base({ PROXYGPT_REDIS_URL: REDIS, PROXYGPT_REDIS_FAIL_MODE: 'OPEN', PROXYGPT_REDIS_TIMEOUT_MS: '250' }));
    expect(config.limiter).toEqual({ kind: 'redis', url: REDIS, failMode: 'open', timeoutMs: 250, prefix: 'proxygpt:' });
    expect(loadConfig(base({ PROXYGPT_REDIS_URL: REDIS, PROXYGPT_REDIS_FAIL_MODE: 'closed' })).config.limiter).toMatchObject({ failMode: 'closed' });
  });

  it('a bad fail mode or timeout is refused, naming its variable', () => {
    for (const mode of ['half', 'fail-open', 'true']) {
      expect(rejected(base({ PROXYGPT_REDIS_URL: REDIS, PROXYGPT_REDIS_FAIL_MODE: mode }), 'PROXYGPT_REDIS_FAIL_MODE').message).toContain(mode);
    }
    for (const ms of ['0', '-5', '1.5', 'soon', '600001']) rejected(base({ PROXYGPT_REDIS_URL: REDIS, PROXYGPT_REDIS_TIMEOUT_MS: ms }), 'PROXYGPT_REDIS_TIMEOUT_MS');
  });

  it('PROXYGPT_LIMITER=memory or sqlite together with a Redis URL is a contradiction', () => {
    for (const limiter of ['memory', 'sqlite']) {
      const err = rejected(base({ PROXYGPT_REDIS_URL: REDIS, PROXYGPT_LIMITER: limiter }), 'PROXYGPT_LIMITER');
      expect(err.message).toMatch(/contradicts PROXYGPT_REDIS_URL/);
      expect(err.message).not.toContain('redis-secret-7a6b');
    }
  });

  it('PROXYGPT_LIMITER=redis without a Redis URL is refused on PROXYGPT_REDIS_URL', () => {
    expect(rejected(base({ PROXYGPT_LIMITER: 'redis' }), 'PROXYGPT_REDIS_URL').message).toMatch(/must be set/);
  });

  it.each([
    ['another scheme', 'http://:redis-secret-7a6b@cache:6379', /must start with redis:\/\/ or rediss:\/\//],
    ['no host', 'redis:///0', /names no host/],
    ['a password and no host', 'redis://:redis-secret-7a6b@/0', /is not a valid URL/],
    ['not a URL', 'redis://:redis-secret-7a6b@cache:port', /is not a valid URL/],
  ])('a Redis URL with %s is refused, naming the variable and hiding the password', (_what, url, problem) => {
    const err = rejected(base({ PROXYGPT_REDIS_URL: url }), 'PROXYGPT_REDIS_URL');
    expect(err.message).toMatch(problem);
    expect(err.message).not.toContain('redis-secret-7a6b');
  });

  it('Redis settings without a Redis URL have no effect and say so', () => {
    const { config, warnings } = loadConfig(base({ PROXYGPT_REDIS_FAIL_MODE: 'open', PROXYGPT_REDIS_TIMEOUT_MS: '100' }));
    expect(config.limiter).toEqual({ kind: 'memory', journalPath: './data/proxygpt.db' });
    expect(warnings).toEqual([
      'PROXYGPT_REDIS_FAIL_MODE is ignored: PROXYGPT_REDIS_URL is not set',
      'PROXYGPT_REDIS_TIMEOUT_MS is ignored: PROXYGPT_REDIS_URL is not set',
    ]);
  });
});

describe('passwords in server URLs', () => {
  it('redactUrl hides the password and keeps the rest; an unparseable URL shows only its scheme', () => {
    expect(redactUrl(PG)).toBe('postgres://gateway:***@db.internal:5432/proxygpt');
    expect(redactUrl(REDIS)).toBe('redis://:***@cache.internal:6379/0');
    expect(redactUrl('postgres://db.internal/proxygpt')).toBe('postgres://db.internal/proxygpt');
    expect(redactUrl('postgres://u:pg-secret-9f8e@[db/x')).toBe('postgres://…');
  });

  it('urlPasswords gives the password as written and decoded, for the redactor', () => {
    expect(urlPasswords('postgres://u:p%40ss%2Fw0rd@h/db')).toEqual(['p%40ss%2Fw0rd', 'p@ss/w0rd']);
    expect(urlPasswords(PG)).toEqual(['pg-secret-9f8e']);
    expect(urlPasswords('redis://cache:6379')).toEqual([]);
  });

  it("the Postgres and Redis passwords are among the secrets kept out of responses and logs", () => {
    const { config } = loadConfig(base({ PROXYGPT_DATABASE_URL: PG, PROXYGPT_REDIS_URL: REDIS }));
    const secrets = secretsOf(config);
    expect(secrets).toContain('pg-secret-9f8e');
    expect(secrets).toContain('redis-secret-7a6b');
    expect(secretsOf(loadConfig(base()).config)).toEqual([UPSTREAM, KEY]);
  });
});
