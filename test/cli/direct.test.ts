/**
 * The CLI in direct mode on a temp SQLite file, through create → list → show → update → rotate →
 * revoke → delete, usage reports over recorded calls, and price overrides. What the CLI reports is
 * checked against the database itself. Commands run in this process (test/cli/cli.ts); reading
 * .env from the working directory is the executable's job, so that test runs the real process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, existsSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { hashSecret } from '../../src/auth/secrets.js';
import type { UsageRecord } from '../../src/contract.js';
import { tempDir } from '../helpers.js';
import { runCli, runCliProcess, runJson } from './cli.js';

const SECRET = /pgpt-[A-Za-z0-9_-]{32}/g;

let dir: string;
let dbPath: string;
let env: Record<string, string>;
let store: SqliteStore;

const cli = (...args: string[]) => runCli(args, { env });
const json = <T = Record<string, unknown>>(...args: string[]) => runJson<T>(args, { env });

function secretsIn(text: string): string[] {
  return text.match(SECRET) ?? [];
}

beforeAll(() => {
  dir = tempDir();
  dbPath = join(dir, 'data', 'gateway.db');
  env = { PROXYGPT_DATABASE_URL: dbPath };
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('proxygpt keys (direct mode)', () => {
  let aliceId = '';
  let aliceSecret = '';

  it('will not read a database that does not exist (a wrong directory is not an empty gateway)', async () => {
    const result = await cli('keys', 'list');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`proxygpt: no database at ${dbPath}: set PROXYGPT_DATABASE_URL (or .env), pass --db <path>, or use --url to manage a running server\n`);
    expect(result.stdout).toBe('');
    expect(existsSync(dbPath)).toBe(false);
  });

  it('creates a key with every flag, prints its secret once, and stores only its hash', async () => {
    const result = await cli(
      'keys', 'create', '--name', 'alice',
      '--rph', '100', '--rpd', '1000', '--tph', '20000', '--tpd', '200000',
      '--usd-day', '5', '--usd-month', '50', '--max-concurrent', '3',
      '--models', 'gpt-4o*,gpt-4.1*', '--endpoints', 'POST /v1/chat/completions', '--ips', '10.0.0.0/8, 192.168.1.7',
      '--expires', '30d', '--notes', 'Team A, laptop',
    );
    expect(result.stderr).toBe(`proxygpt: created a new database at ${dbPath}\n`);
    expect(result.code).toBe(0);
    const secrets = secretsIn(result.stdout);
    expect(secrets).toHaveLength(1);
    aliceSecret = secrets[0]!;
    expect(result.stdout).toMatch(/^Created key alice \(key_[a-z2-7]{12}\)\./);
    expect(result.stdout).toContain('it will not be shown again');
    expect(result.stdout).toMatch(/requests\/hour\s+100 requests/);
    expect(result.stdout).toMatch(/usd\/month\s+\$50 per calendar month/);
    expect(result.stdout).toMatch(/in flight\s+3 calls at once/);
    aliceId = /\((key_[a-z2-7]{12})\)/.exec(result.stdout)![1]!;

    store = new SqliteStore(openSqlite(dbPath));
    const stored = await store.findKeyByHash(hashSecret(aliceSecret));
    expect(stored).toMatchObject({
      id: aliceId,
      name: 'alice',
      notes: 'Team A, laptop',
      disabled: false,
      prefix: `${aliceSecret.slice(0, 9)}…`,
      policy: {
        requestsPerHour: 100,
        requestsPerDay: 1000,
        tokensPerHour: 20000,
        tokensPerDay: 200000,
        usdPerDay: 5,
        usdPerMonth: 50,
        maxConcurrent: 3,
        models: ['gpt-4o*', 'gpt-4.1*'],
        endpoints: ['POST /v1/chat/completions'],
        ips: ['10.0.0.0/8', '192.168.1.7'],
      },
    });
    const days = (stored!.expiresAt! - stored!.createdAt) / 86_400_000;
    expect(days).toBe(30);
    // The secret itself is nowhere in the database files.
    for (const file of [dbPath, `${dbPath}-wal`]) if (existsSync(file)) expect(readFileSync(file).includes(aliceSecret)).toBe(false);
  });

  it('creates with --json: the admin API answer, secret in `key`', async () => {
    const created = await json('keys', 'create', '--name', 'bob', '--rpd', '10', '--expires', '2999-01-01T00:00:00Z');
    expect(created).toMatchObject({
      name: 'bob',
      status: 'active',
      requests_per_day: 10,
      requests_per_hour: null,
      expires_at: '2999-01-01T00:00:00.000Z',
      models: null,
      disabled: false,
    });
    expect(String(created.key)).toMatch(/^pgpt-[A-Za-z0-9_-]{32}$/);
    expect(await store.findKeyByHash(hashSecret(String(created.key)))).toMatchObject({ name: 'bob' });
  });

  it('lists keys as a table and as JSON', async () => {
    const table = await cli('keys', 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+PREFIX\s+LIMITS\s+EXPIRES$/);
    expect(lines).toHaveLength(3);
    // By creation time, then id (two keys made in the same millisecond come in id order).
    const row = (name: string) => lines.slice(1).find((l) => new RegExp(`^key_\\S+\\s+${name}\\s`).test(l)) ?? '';
    expect(row('alice')).toMatch(new RegExp(`^${aliceId}\\s+alice\\s+active\\s+pgpt-\\S{4}…\\s+100 req/h, 1,000 req/d, 20,000 tok/h, 200,000 tok/d, \\$5/day, \\$50/month, 3 at once\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`));
    expect(row('bob')).toMatch(/^key_\S+\s+bob\s+active\s+\S+\s+10 req\/d\s+2999-01-01 00:00:00 UTC$/);
    expect(secretsIn(table.stdout)).toEqual([]);

    const list = await json<{ object: string; data: Array<Record<string, unknown>> }>('keys', 'list');
    expect(list.object).toBe('list');
    expect(list.data.map((k) => k.name).sort()).toEqual(['alice', 'bob']);
    expect(list.data.find((k) => k.name === 'alice')).toMatchObject({ id: aliceId, tokens_per_hour: 20000, usd_per_day: 5, ips: ['10.0.0.0/8', '192.168.1.7'] });
    expect(JSON.stringify(list)).not.toMatch(SECRET);
  });

  it('shows a key by name or by id', async () => {
    const byName = await json('keys', 'show', 'alice');
    const byId = await json('keys', 'show', aliceId);
    expect(byId).toEqual(byName);
    expect(byName).toMatchObject({ id: aliceId, name: 'alice', notes: 'Team A, laptop', endpoints: ['POST /v1/chat/completions'] });
    expect(byName).not.toHaveProperty('key');

    const human = await cli('keys', 'show', 'alice');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^id\s+key_/);
    expect(human.stdout).toMatch(/expires\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 30 days\)/);
    expect(human.stdout).toMatch(/ips\s+10\.0\.0\.0\/8, 192\.168\.1\.7/);
  });

  it('updates limits: sets some, clears others with none and --no-expiry, keeps the rest', async () => {
    const updated = await json(
      'keys', 'update', 'alice',
      '--rph', '50', '--usd-month', '20.5', '--ips', '192.168.0.0/16',
      '--rpd', 'none', '--tpd', 'none', '--models', 'none', '--no-expiry', '--notes', '',
    );
    expect(updated).toMatchObject({
      id: aliceId,
      requests_per_hour: 50,
      requests_per_day: null,
      tokens_per_hour: 20000,
      tokens_per_day: null,
      usd_per_day: 5,
      usd_per_month: 20.5,
      models: null,
      endpoints: ['POST /v1/chat/completions'],
      ips: ['192.168.0.0/16'],
      expires_at: null,
      notes: '',
    });
    const stored = await store.getKey(aliceId);
    expect(stored!.expiresAt).toBeNull();
    expect(stored!.policy).toMatchObject({ requestsPerHour: 50, requestsPerDay: null, models: null, usdPerMonth: 20.5 });

    const human = await cli('keys', 'update', 'alice', '--expires', '12h', '--endpoints', 'none');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Updated key alice \(key_/);
    expect(human.stdout).toMatch(/requests\/day\s+no limit/);
    expect(human.stdout).toMatch(/endpoints\s+all the gateway's/);
    expect(human.stdout).toMatch(/expires\s+.* UTC \(in 12 hours\)/);
    expect((await store.getKey(aliceId))!.policy.endpoints).toBeNull();
  });

  it('renames, disables and enables a key', async () => {
    expect(await json('keys', 'update', 'bob', '--name', 'bob.ci', '--disable')).toMatchObject({ name: 'bob.ci', status: 'disabled', disabled: true });
    expect((await store.getKey('bob.ci'))!.disabled).toBe(true);
    expect(await json('keys', 'update', 'bob.ci', '--enable')).toMatchObject({ name: 'bob.ci', status: 'active', disabled: false });
    expect(await store.getKey('bob')).toBeNull();
  });

  it('rotates a key: a new secret printed once, the old one no longer matches', async () => {
    const before = await store.getKey(aliceId);
    const result = await cli('keys', 'rotate', 'alice');
    expect(result.code).toBe(0);
    const secrets = secretsIn(result.stdout);
    expect(secrets).toHaveLength(1);
    const fresh = secrets[0]!;
    expect(fresh).not.toBe(aliceSecret);
    expect(result.stdout).toContain('the old secret no longer works');
    expect(result.stdout).toContain('it will not be shown again');
    expect(await store.findKeyByHash(hashSecret(aliceSecret))).toBeNull();
    const after = await store.findKeyByHash(hashSecret(fresh));
    expect(after).toMatchObject({ id: aliceId, policy: before!.policy });
    expect(after!.prefix).toBe(`${fresh.slice(0, 9)}…`);
    aliceSecret = fresh;

    const viaJson = await json('keys', 'rotate', aliceId);
    expect(String(viaJson.key)).toMatch(/^pgpt-/);
    expect(await store.findKeyByHash(hashSecret(aliceSecret))).toBeNull();
    expect(await store.findKeyByHash(hashSecret(String(viaJson.key)))).toMatchObject({ id: aliceId });
  });

  it('revokes a key: disabled at once', async () => {
    const result = await cli('keys', 'revoke', 'alice');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`Revoked key alice (${aliceId}): it is disabled and stops working at once.\nTo allow it again: proxygpt keys update ${aliceId} --enable\n`);
    expect((await store.getKey(aliceId))!.disabled).toBe(true);
    expect(await json('keys', 'show', 'alice')).toMatchObject({ status: 'disabled' });
  });

  it('deletes a key', async () => {
    const result = await cli('keys', 'delete', 'alice');
    expect(result).toMatchObject({ code: 0, stdout: `Deleted key ${aliceId}.\n` });
    expect(await store.getKey(aliceId)).toBeNull();
    const gone = await cli('keys', 'show', aliceId);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`proxygpt: No key named or with id "${aliceId}".\n`);
    expect((await json<{ data: unknown[] }>('keys', 'list')).data).toHaveLength(1);
  });
});

describe('proxygpt usage (direct mode)', () => {
  const now = Date.now();
  let carolId = '';
  let daveId = '';

  const record = (principal: string, ts: number, status: number, promptTokens: number, completionTokens: number, costMicroUsd: number): UsageRecord => ({
    ts,
    requestId: `req-${principal}-${ts}-${status}`,
    principal,
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    status,
    durationMs: 12,
    stream: false,
    promptTokens,
    completionTokens,
    costMicroUsd,
    estimated: false,
  });

  beforeAll(async () => {
    carolId = String((await json('keys', 'create', '--name', 'carol')).id);
    daveId = String((await json('keys', 'create', '--name', 'dave')).id);
    await store.recordUsage([
      record(carolId, now - 3_600_000, 200, 100, 50, 1_500),
      record(carolId, now - 7_200_000, 200, 10, 5, 250),
      record(carolId, now - 60_000, 429, 0, 0, 0),
      record(daveId, now - 120_000, 200, 1000, 500, 123_456),
      record('env-key-1', now - 30_000, 200, 7, 3, 10),
      record(carolId, now - 10 * 86_400_000, 200, 9999, 9999, 999_999), // outside --since 7d
    ]);
  });

  it('reports all keys (default range: 30 days) as JSON', async () => {
    const view = await json<Record<string, any>>('usage');
    expect(view).toMatchObject({ key: null, requests: 6, prompt_tokens: 11_116, completion_tokens: 10_557, total_tokens: 21_673, usd: 1.125215, status_counts: { '200': 5, '429': 1 } });
    expect(Object.keys(view.by_key).sort()).toEqual([carolId, daveId, 'env-key-1'].sort());
    expect(view.by_key[daveId]).toEqual({ requests: 1, prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500, usd: 0.123456, status_counts: { '200': 1 } });
  });

  it('reports one key by name, over --since, as JSON and as a table', async () => {
    const view = await json<Record<string, any>>('usage', '--key', 'carol', '--since', '7d');
    expect(view).toEqual({
      since: expect.any(String),
      until: expect.any(String),
      key: carolId,
      requests: 3,
      prompt_tokens: 110,
      completion_tokens: 55,
      total_tokens: 165,
      usd: 0.00175,
      status_counts: { '200': 2, '429': 1 },
    });
    expect(Date.parse(view.until) - Date.parse(view.since)).toBeGreaterThanOrEqual(7 * 86_400_000);

    const table = await cli('usage', '--key', 'carol', '--since', '7d');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^Usage of key ${carolId} from \\d{4}-.* UTC to \\d{4}-.* UTC\\n\\n`));
    expect(table.stdout).toMatch(/KEY\s+NAME\s+REQUESTS\s+PROMPT TOKENS\s+COMPLETION TOKENS\s+TOTAL TOKENS\s+USD\s+STATUS CODES/);
    expect(table.stdout).toMatch(new RegExp(`${carolId}\\s+carol\\s+3\\s+110\\s+55\\s+165\\s+\\$0\\.00175\\s+200: 2, 429: 1`));
  });

  it('reports every key by name with a total row, and honours --until', async () => {
    const until = new Date(now - 90_000).toISOString();
    const table = await cli('usage', '--since', '1d', '--until', until);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`${carolId}\\s+carol\\s+2\\s+110\\s+55\\s+165\\s+\\$0\\.00175\\s+200: 2\\n`));
    expect(table.stdout).toMatch(new RegExp(`${daveId}\\s+dave\\s+1\\s+1,000\\s+500\\s+1,500\\s+\\$0\\.123456\\s+200: 1\\n`));
    expect(table.stdout).not.toContain('env-key-1'); // its call came after --until
    expect(table.stdout).toMatch(/total\s+3\s+1,110\s+555\s+1,665\s+\$0\.125206\s+200: 3\n$/);
  });
});

describe('proxygpt usage over an empty range', () => {
  it('says there is nothing rather than printing a table of zeros', async () => {
    const since = new Date(Date.now() - 60 * 86_400_000).toISOString();
    const until = new Date(Date.now() - 50 * 86_400_000).toISOString();
    const result = await cli('usage', '--since', since, '--until', until);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage of all keys from .* UTC to .* UTC\n\nNo recorded calls in this range\.\n$/);
    expect(await json('usage', '--since', since, '--until', until)).toMatchObject({ requests: 0, by_key: {} });
  });
});

describe('proxygpt prices (direct mode)', () => {
  it('sets, lists and unsets a price override', async () => {
    expect(await json('prices', 'set', 'gpt-4o-mini', '--input', '0.2', '--output', '0.8')).toEqual({ model: 'gpt-4o-mini', input: 0.2, cachedInput: 0.2, output: 0.8 });
    const set = await cli('prices', 'set', 'my-model', '--input', '1', '--output', '2', '--cached-input', '0.5');
    expect(set).toMatchObject({ code: 0, stdout: 'Price of my-model set (USD per million tokens): input $1, cached input $0.5, output $2.\n' });
    expect(await store.priceOverrides()).toEqual({ 'gpt-4o-mini': { input: 0.2, cachedInput: 0.2, output: 0.8 }, 'my-model': { input: 1, cachedInput: 0.5, output: 2 } });

    const list = await json<{ bundled: Record<string, unknown>; overrides: Record<string, unknown> }>('prices', 'list');
    expect(list.bundled['gpt-4o']).toEqual({ input: 2.5, cachedInput: 1.25, output: 10 });
    expect(Object.keys(list.overrides).sort()).toEqual(['gpt-4o-mini', 'my-model']);
    const table = await cli('prices', 'list');
    expect(table.stdout).toMatch(/MODEL\s+INPUT\s+CACHED INPUT\s+OUTPUT\s+SOURCE/);
    expect(table.stdout).toMatch(/\ngpt-4o-mini\s+\$0\.2\s+\$0\.2\s+\$0\.8\s+override\n/);
    expect(table.stdout).toMatch(/\ngpt-4o\s+\$2\.5\s+\$1\.25\s+\$10\s+bundled\n/);

    expect(await cli('prices', 'unset', 'gpt-4o-mini')).toMatchObject({ code: 0, stdout: 'Price override of gpt-4o-mini removed.\n' });
    expect(Object.keys(await store.priceOverrides())).toEqual(['my-model']);
  });
});

describe('choosing the database', () => {
  it('reads PROXYGPT_DATABASE_URL from .env in the working directory', async () => {
    const other = join(dir, 'project');
    mkdirSync(other);
    writeFileSync(join(other, '.env'), `PROXYGPT_DATABASE_URL="sqlite:${dbPath}"\nOPENAI_API_KEY=unused\n`);
    const result = await runCliProcess(['keys', 'list', '--json'], { cwd: other, env: {} });
    expect(result.code).toBe(0);
    // Listed by creation time, then id: keys created in the same millisecond come in id order.
    expect((JSON.parse(result.stdout) as { data: Array<{ name: string }> }).data.map((k) => k.name).sort()).toEqual(['bob.ci', 'carol', 'dave']);
  });

  it('takes --db over the environment', async () => {
    const result = await runCli(['--db', dbPath, 'keys', 'show', 'carol', '--json'], { env: { PROXYGPT_DATABASE_URL: join(dir, 'elsewhere.db') } });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ name: 'carol' });
    expect(existsSync(join(dir, 'elsewhere.db'))).toBe(false);
  });
});
