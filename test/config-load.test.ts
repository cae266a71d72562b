/**
 * Configuration, as a unit: loadConfig turns the environment into one validated Config (defaults,
 * every setting, proxy keys) or throws a ConfigError naming the variable at fault; and the
 * unquote / parseEndpoints helpers.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadAdminConfig, loadConfig, parseEndpoints, unquote } from '../src/config.js';
import { KEY, UPSTREAM } from './config-helpers.js';

const base = (extra: Record<string, string | undefined> = {}) => ({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: KEY, ...extra });

/** The ConfigError loadConfig throws for `env` (fails the test if it does not throw one). */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

function expectRejected(env: Record<string, string | undefined>, variable: string): ConfigError {
  const err = configError(env);
  expect(err.variable).toBe(variable);
  expect(err.message.startsWith(`${variable}: `)).toBe(true);
  return err;
}

describe('loadConfig: defaults', () => {
  it('fills in every default from the contract', () => {
    const { config, warnings } = loadConfig(base());
    expect(config.openaiApiKey).toBe(UPSTREAM);
    expect(config.openaiBaseUrl.href).toBe('https://api.openai.com/v1');
    expect(config.proxyKeys).toEqual([KEY]);
    expect(config.hourlyRateLimit).toBeNull();
    expect(config.dailyRateLimit).toBeNull();
    expect(config.countMode).toBe('all');
    expect(config.insecureDebug).toBe(false);
    expect(config.port).toBe(8000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.database).toEqual({ kind: 'sqlite', path: './data/proxygpt.db' });
    // The memory limiter journals into the store's own file, as before the limiter choice was a union.
    expect(config.limiter).toEqual({ kind: 'memory', journalPath: './data/proxygpt.db' });
    expect(config.adminKey).toBeNull();
    expect(config.allowedEndpoints).toEqual([{ method: 'POST', path: '/v1/chat/completions' }]);
    expect(config.allowedModels).toBeNull();
    expect(config.corsOrigins).toEqual([]);
    expect(config.workers).toBe(1);
    expect(config.logLevel).toBe('info');
    expect(config.legacyModel).toBe('gpt-3.5-turbo');
    expect(config.maxBodyBytes).toBeGreaterThan(0);
    expect(config.upstreamTimeoutMs).toBeGreaterThan(0);
    expect(config.trustProxy).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('treats empty and blank variables as unset', () => {
    const { config } = loadConfig(base({ PORT: '', HOST: '   ', OPENAI_BASE_URL: '', USE_HOURLY_RATE_LIMIT: '', LOG_LEVEL: ' ' }));
    expect(config.port).toBe(8000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.openaiBaseUrl.href).toBe('https://api.openai.com/v1');
    expect(config.hourlyRateLimit).toBeNull();
    expect(config.logLevel).toBe('info');
  });

  it('reads every setting when given', () => {
    const { config } = loadConfig(
      base({
        OPENAI_BASE_URL: 'http://localhost:11434/v1/',
        USE_HOURLY_RATE_LIMIT: 'true',
        PROXYGPT_HOURLY_RATE_LIMIT: '100',
        USE_DAILY_RATE_LIMIT: 'yes',
        PROXYGPT_DAILY_RATE_LIMIT: '1000',
        INSECURE_DEBUG: 'TRUE',
        PORT: '9000',
        HOST: '0.0.0.0',
        PROXYGPT_DATABASE_URL: 'sqlite:///var/lib/proxygpt.db',
        PROXYGPT_ALLOWED_ENDPOINTS: 'POST /v1/chat/completions, post /v1/embeddings, GET /v1/models/*',
        PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, text-embedding-3-small',
        PROXYGPT_CORS_ORIGINS: 'https://a.example, https://b.example',
        PROXYGPT_WORKERS: '4',
        LOG_LEVEL: 'DEBUG',
        PROXYGPT_LEGACY_MODEL: 'gpt-4o-mini',
      }),
    );
    expect(config.openaiBaseUrl.href).toBe('http://localhost:11434/v1');
    expect(config.hourlyRateLimit).toBe(100);
    expect(config.dailyRateLimit).toBe(1000);
    expect(config.insecureDebug).toBe(true);
    expect(config.port).toBe(9000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.database).toEqual({ kind: 'sqlite', path: '/var/lib/proxygpt.db' });
    expect(config.limiter).toEqual({ kind: 'memory', journalPath: '/var/lib/proxygpt.db' });
    expect(config.allowedEndpoints).toEqual([
      { method: 'POST', path: '/v1/chat/completions' },
      { method: 'POST', path: '/v1/embeddings' },
      { method: 'GET', path: '/v1/models/*' },
    ]);
    expect(config.allowedModels).toEqual(['gpt-4o*', 'text-embedding-3-small']);
    expect(config.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.workers).toBe(4);
    expect(config.logLevel).toBe('debug');
    expect(config.legacyModel).toBe('gpt-4o-mini');
  });

  it('ignores a limit value while its USE_ switch is off (the original behaviour)', () => {
    const { config } = loadConfig(base({ USE_HOURLY_RATE_LIMIT: 'false', PROXYGPT_HOURLY_RATE_LIMIT: 'not a number' }));
    expect(config.hourlyRateLimit).toBeNull();
  });
});

describe('loadConfig: proxy keys', () => {
  it('trims spaces and quotes around PROXYGPT_API_KEYS and each of its keys', () => {
    const a = 'key-a-0123456789abcdef';
    const b = 'key-b-0123456789abcdef';
    const c = 'key-c-0123456789abcdef';
    const { config } = loadConfig({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `" ${a} ", '${b}' ,${c}` });
    expect(config.proxyKeys).toEqual([a, b, c]);
    expect(loadConfig({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `"${a},${b}"` }).config.proxyKeys).toEqual([a, b]);
    expect(loadConfig({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `${a},,  ,${b},` }).config.proxyKeys).toEqual([a, b]);
  });

  it('joins PROXYGPT_API_KEY and PROXYGPT_API_KEYS and removes duplicates', () => {
    const { config } = loadConfig({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: KEY, PROXYGPT_API_KEYS: `${KEY}, other-key-0123456789ab, '${KEY}'` });
    expect(config.proxyKeys).toEqual([KEY, 'other-key-0123456789ab']);
  });

  it('unquotes the upstream key too', () => {
    expect(loadConfig(base({ OPENAI_API_KEY: ` "${UPSTREAM}" ` })).config.openaiApiKey).toBe(UPSTREAM);
  });

  it('warns about a proxy key shorter than 16 characters', () => {
    const { config, warnings } = loadConfig({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `${KEY},short-key` });
    expect(config.proxyKeys).toEqual([KEY, 'short-key']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/#2.*shorter than 16/);
    expect(warnings[0]).not.toContain('short-key'); // warnings are printed: they must not show the key
  });

  it('requires at least one proxy key', () => {
    expect(configError({ OPENAI_API_KEY: UPSTREAM }).message).toMatch(/PROXYGPT_API_KEY/);
    expect(configError({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: ' , ,' }).message).toMatch(/PROXYGPT_API_KEY/);
    expect(configError({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: '""' }).message).toMatch(/PROXYGPT_API_KEY/);
  });

  it('rejects a proxy key equal to the upstream key', () => {
    expectRejected({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `${KEY},${UPSTREAM}` }, 'PROXYGPT_API_KEYS');
  });

  it('rejects a proxy key no client could send in a Bearer header (spaces, control or non-ASCII characters)', () => {
    expectRejected({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: 'my secret proxy key 123' }, 'PROXYGPT_API_KEY');
    expectRejected({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `${KEY},clé-secrète-0123456789` }, 'PROXYGPT_API_KEYS');
    expectRejected({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEYS: `${KEY},tab\there-0123456789` }, 'PROXYGPT_API_KEYS');
  });
});

describe('loadConfig: invalid settings throw a ConfigError naming the variable', () => {
  it('OPENAI_API_KEY missing, empty or only quotes', () => {
    expectRejected({ PROXYGPT_API_KEY: KEY }, 'OPENAI_API_KEY');
    expectRejected({ PROXYGPT_API_KEY: KEY, OPENAI_API_KEY: '  ' }, 'OPENAI_API_KEY');
    expectRejected({ PROXYGPT_API_KEY: KEY, OPENAI_API_KEY: '""' }, 'OPENAI_API_KEY');
    expectRejected({ PROXYGPT_API_KEY: KEY, OPENAI_API_KEY: "''" }, 'OPENAI_API_KEY');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['zero', '0'],
    ['negative', '-5'],
    ['a float', '1.5'],
    ['text', 'ten'],
    ['a number with text', '10req'],
    ['too large', '1e400'],
    ['beyond safe integers', '99999999999999999999'],
  ])('USE_HOURLY_RATE_LIMIT=true with a limit that is %s', (_name, limit) => {
    const err = expectRejected(base({ USE_HOURLY_RATE_LIMIT: 'true', PROXYGPT_HOURLY_RATE_LIMIT: limit }), 'PROXYGPT_HOURLY_RATE_LIMIT');
    if (limit === undefined) expect(err.message).toMatch(/USE_HOURLY_RATE_LIMIT/);
  });

  it.each([['0'], ['-1'], ['2.5'], ['x'], [undefined]])('USE_DAILY_RATE_LIMIT=true with limit %s', (limit) => {
    expectRejected(base({ USE_DAILY_RATE_LIMIT: 'true', PROXYGPT_DAILY_RATE_LIMIT: limit }), 'PROXYGPT_DAILY_RATE_LIMIT');
  });

  it.each([['not a url'], ['ftp://example.com/v1'], ['api.openai.com/v1'], ['http://user:pass@example.com/v1'], ['file:///etc/passwd']])(
    'OPENAI_BASE_URL=%s',
    (url) => {
      expectRejected(base({ OPENAI_BASE_URL: url }), 'OPENAI_BASE_URL');
    },
  );

  it.each([['abc'], ['-1'], ['65536'], ['80.5'], ['8000abc'], ['0x1F90']])('PORT=%s', (port) => {
    expectRejected(base({ PORT: port }), 'PORT');
  });

  it.each([
    ['USE_HOURLY_RATE_LIMIT', 'maybe'],
    ['USE_DAILY_RATE_LIMIT', 'enabled'],
    ['INSECURE_DEBUG', 'yes please'],
    ['PROXYGPT_TRUST_PROXY', '2'],
  ])('a bad boolean in %s', (name, value) => {
    const err = expectRejected(base({ [name]: value }), name);
    expect(err.message).toContain(value);
  });

  it('accepts the usual spellings of booleans', () => {
    for (const yes of ['true', 'TRUE', '1', 'yes', 'on', '"true"']) expect(loadConfig(base({ INSECURE_DEBUG: yes })).config.insecureDebug).toBe(true);
    for (const no of ['false', 'False', '0', 'no', 'off']) expect(loadConfig(base({ INSECURE_DEBUG: no })).config.insecureDebug).toBe(false);
  });

  it.each([
    ['no method', '/v1/chat/completions'],
    ['an unknown method', 'FETCH /v1/chat/completions'],
    ['a path outside /v1', 'POST /admin/keys'],
    ['a path without the /v1 prefix', 'POST /chat/completions'],
    ['dot segments', 'POST /v1/../admin'],
    ['a glob in the middle', 'GET /v1/*/models'],
    ['only commas', ', ,'],
    ['a query string', 'GET /v1/models?x=1'],
  ])('PROXYGPT_ALLOWED_ENDPOINTS with %s', (_name, value) => {
    expectRejected(base({ PROXYGPT_ALLOWED_ENDPOINTS: value }), 'PROXYGPT_ALLOWED_ENDPOINTS');
  });

  it('other variables: LOG_LEVEL, PROXYGPT_WORKERS, PROXYGPT_MAX_BODY_BYTES, PROXYGPT_UPSTREAM_TIMEOUT_MS, PROXYGPT_RATE_LIMIT_COUNT, PROXYGPT_DATABASE_URL', () => {
    expectRejected(base({ LOG_LEVEL: 'verbose' }), 'LOG_LEVEL');
    expectRejected(base({ PROXYGPT_WORKERS: '0' }), 'PROXYGPT_WORKERS');
    expectRejected(base({ PROXYGPT_WORKERS: 'many' }), 'PROXYGPT_WORKERS');
    expectRejected(base({ PROXYGPT_MAX_BODY_BYTES: '0' }), 'PROXYGPT_MAX_BODY_BYTES');
    expectRejected(base({ PROXYGPT_MAX_BODY_BYTES: '10MB' }), 'PROXYGPT_MAX_BODY_BYTES');
    expectRejected(base({ PROXYGPT_UPSTREAM_TIMEOUT_MS: '-1' }), 'PROXYGPT_UPSTREAM_TIMEOUT_MS');
    expectRejected(base({ PROXYGPT_RATE_LIMIT_COUNT: 'some' }), 'PROXYGPT_RATE_LIMIT_COUNT');
    expect(expectRejected(base({ PROXYGPT_DATABASE_URL: 'mysql://root:hunter2@localhost/db' }), 'PROXYGPT_DATABASE_URL').message).toBe(
      'PROXYGPT_DATABASE_URL: unsupported scheme (got "mysql://root:***@localhost/db"); use a file path, sqlite:path or postgres://…',
    );
    expectRejected(base({ PROXYGPT_DATABASE_URL: 'sqlite:' }), 'PROXYGPT_DATABASE_URL');
  });

  it('PROXYGPT_LIMITER: memory (the default) or sqlite, in any case, both on the store\'s SQLite file; anything else is rejected', () => {
    const memory = { kind: 'memory', journalPath: './data/proxygpt.db' };
    const sqlite = { kind: 'sqlite', path: './data/proxygpt.db' };
    expect(loadConfig(base()).config.limiter).toEqual(memory);
    expect(loadConfig(base({ PROXYGPT_LIMITER: '' })).config.limiter).toEqual(memory);
    expect(loadConfig(base({ PROXYGPT_LIMITER: 'memory' })).config.limiter).toEqual(memory);
    expect(loadConfig(base({ PROXYGPT_LIMITER: 'SQLite' })).config.limiter).toEqual(sqlite);
    expect(loadConfig(base({ PROXYGPT_LIMITER: ' "sqlite" ' })).config.limiter).toEqual(sqlite);
    expect(loadConfig(base({ PROXYGPT_LIMITER: 'MEMORY' })).config.limiter).toEqual(memory);
    expect(loadConfig(base({ PROXYGPT_LIMITER: 'sqlite', PROXYGPT_DATABASE_URL: 'sqlite:/srv/g.db' })).config.limiter).toEqual({ kind: 'sqlite', path: '/srv/g.db' });
    for (const value of ['cluster', 'sqlite3', 'memory,sqlite', 'postgres']) {
      const err = expectRejected(base({ PROXYGPT_LIMITER: value }), 'PROXYGPT_LIMITER');
      expect(err.message).toBe(`PROXYGPT_LIMITER: must be "memory", "sqlite" or "redis" (got ${JSON.stringify(value)})`);
    }
  });

  it('PROXYGPT_CORS_ORIGINS entries that are no origin', () => {
    for (const value of ['app.example.com', 'https://app.example.com/path', 'ftp://app.example.com', 'https://a.example, not an origin', 'https://a.example?x=1']) {
      expectRejected(base({ PROXYGPT_CORS_ORIGINS: value }), 'PROXYGPT_CORS_ORIGINS');
    }
  });

  it('PROXYGPT_CORS_ORIGINS is normalised to what browsers send in Origin', () => {
    const { config } = loadConfig(base({ PROXYGPT_CORS_ORIGINS: 'https://App.Example.com/, http://localhost:3000, *' }));
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000', '*']);
  });

  it('never puts the upstream key into an error message', () => {
    const err = configError({ OPENAI_API_KEY: UPSTREAM, PROXYGPT_API_KEY: UPSTREAM });
    expect(err.message).not.toContain(UPSTREAM);
  });
});

describe('helpers', () => {
  it('unquote strips spaces and one layer of matching quotes', () => {
    expect(unquote('  "abc"  ')).toBe('abc');
    expect(unquote("'abc'")).toBe('abc');
    expect(unquote(' " abc " ')).toBe('abc');
    expect(unquote('abc')).toBe('abc');
  });

  it('parseEndpoints allows the contract example', () => {
    expect(parseEndpoints('POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models')).toEqual([
      { method: 'POST', path: '/v1/chat/completions' },
      { method: 'POST', path: '/v1/embeddings' },
      { method: 'GET', path: '/v1/models' },
    ]);
  });
});
