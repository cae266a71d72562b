/**
 * The CLI in remote mode (`--url` + admin key) against a real gateway over HTTP: the same flow as
 * direct mode, with the effect of each command checked by calling the gateway with the key
 * (create → works, rotate → old secret 401 and new one 200, revoke → 401). Direct mode on the
 * gateway's own database file prints byte for byte the same output. A wrong or missing admin key
 * fails with a clear message that never shows the key. Commands run in this process
 * (test/cli/cli.ts), talking to the gateway over loopback HTTP as the executable would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { UsageRecord } from '../../src/contract.js';
import { authHeaders, chatBody, startGateway, type TestGateway } from '../helpers.js';
import { runCli, runJson } from './cli.js';

const ADMIN = 'admin-key-for-cli-tests-0123456789';
const SECRET = /pgpt-[A-Za-z0-9_-]{32}/g;

let gw: TestGateway;
let dbPath: string;
const env = { PROXYGPT_ADMIN_KEY: ADMIN };

const remote = (...args: string[]) => runCli(['--url', gw.url, ...args], { env });
const remoteJson = <T = Record<string, any>>(...args: string[]) => runJson<T>(['--url', gw.url, ...args], { env });
const direct = (...args: string[]) => runCli(['--db', dbPath, ...args], { env: {} });

async function call(secret: string): Promise<{ status: number; message: string }> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: authHeaders(secret), body: chatBody() });
  const body = (await res.json()) as { error?: { message: string } };
  return { status: res.status, message: body.error?.message ?? '' };
}

beforeAll(async () => {
  gw = await startGateway({ env: { PROXYGPT_ADMIN_KEY: ADMIN } });
  dbPath = join(gw.dir, 'proxygpt.db');
});

afterAll(async () => {
  await gw?.close();
});

describe('proxygpt --url (remote mode)', () => {
  let id = '';
  let secret = '';

  it('creates a key that works at once', async () => {
    const result = await remote('keys', 'create', '--name', 'alice', '--rph', '100', '--tpd', '200000', '--usd-day', '5', '--models', 'gpt-4o*', '--expires', '30d', '--notes', 'remote');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const secrets = result.stdout.match(SECRET) ?? [];
    expect(secrets).toHaveLength(1);
    secret = secrets[0]!;
    id = /\((key_[a-z2-7]{12})\)/.exec(result.stdout)![1]!;
    expect(result.stdout).toContain('it will not be shown again');
    expect(result.stdout).not.toContain(ADMIN);
    expect(await call(secret)).toMatchObject({ status: 200 });
  });

  it('lists and shows keys', async () => {
    const list = await remoteJson<{ object: string; data: Array<Record<string, unknown>> }>('keys', 'list');
    expect(list).toMatchObject({ object: 'list', data: [{ id, name: 'alice', status: 'active', requests_per_hour: 100, tokens_per_day: 200000, usd_per_day: 5, models: ['gpt-4o*'], notes: 'remote' }] });
    const table = await remote('keys', 'list');
    expect(table.stdout).toMatch(new RegExp(`\\n${id}\\s+alice\\s+active\\s+pgpt-\\S{4}…\\s+100 req/h, 200,000 tok/d, \\$5/day\\s+\\d{4}-`));
    expect(await remoteJson('keys', 'show', 'alice')).toEqual(list.data[0]);
  });

  it('updates limits, sets and clears, with the effect visible at the gateway', async () => {
    const updated = await remoteJson('keys', 'update', 'alice', '--rph', 'none', '--rpd', '2', '--models', 'none', '--no-expiry');
    expect(updated).toMatchObject({ id, requests_per_hour: null, requests_per_day: 2, models: null, expires_at: null, tokens_per_day: 200000 });
    // One call was made after create; the limit of 2 per day admits exactly one more.
    expect((await call(secret)).status).toBe(200);
    expect((await call(secret)).status).toBe(429);
    expect(await remoteJson('keys', 'update', 'alice', '--rpd', 'none')).toMatchObject({ requests_per_day: null });
    expect((await call(secret)).status).toBe(200);
  });

  it('rotates: the old secret stops working, the new one works', async () => {
    const rotated = await remoteJson('keys', 'rotate', 'alice');
    expect(rotated).toMatchObject({ id, name: 'alice' });
    const fresh = String(rotated.key);
    expect(fresh).toMatch(/^pgpt-[A-Za-z0-9_-]{32}$/);
    expect(fresh).not.toBe(secret);
    expect((await call(secret)).status).toBe(401);
    expect((await call(fresh)).status).toBe(200);
    secret = fresh;
  });

  it('revokes: the key is refused on the next request', async () => {
    const result = await remote('keys', 'revoke', id);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Revoked key alice (${id})`);
    expect(await call(secret)).toEqual({ status: 401, message: 'This proxy key has been disabled by the admin.' });
    expect(await remoteJson('keys', 'update', 'alice', '--enable')).toMatchObject({ status: 'active' });
    expect((await call(secret)).status).toBe(200);
  });

  it('answers an unknown key with exit 1 and the server message', async () => {
    const result = await remote('keys', 'show', 'nobody');
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'proxygpt: No key named or with id "nobody".\n' });
  });

  it('deletes: the key is gone and refused', async () => {
    expect(await remoteJson('keys', 'delete', 'alice')).toEqual({ id, deleted: true });
    expect((await call(secret)).status).toBe(401);
    expect((await remote('keys', 'show', id)).code).toBe(1);
  });

  it('sets and unsets prices on the server', async () => {
    expect(await remoteJson('prices', 'set', 'gpt-4o-mini', '--input', '0.3', '--output', '1.2', '--cached-input', '0.1')).toEqual({ model: 'gpt-4o-mini', input: 0.3, cachedInput: 0.1, output: 1.2 });
    expect((await remoteJson('prices', 'list')).overrides).toEqual({ 'gpt-4o-mini': { input: 0.3, cachedInput: 0.1, output: 1.2 } });
    expect(await remoteJson('prices', 'unset', 'gpt-4o-mini')).toEqual({ model: 'gpt-4o-mini', deleted: true });
    expect((await remoteJson('prices', 'list')).overrides).toEqual({});
  });
});

describe('remote and direct mode print the same', () => {
  const day = 86_400_000;
  const since = new Date(Date.now() - 3 * day).toISOString();
  const until = new Date(Date.now() - 1 * day).toISOString();
  let bobId = '';

  beforeAll(async () => {
    bobId = String((await remoteJson('keys', 'create', '--name', 'bob', '--rpd', '1000', '--usd-month', '25', '--ips', '127.0.0.1')).id);
    await remoteJson('keys', 'create', '--name', 'carol', '--tph', '5000', '--expires', '2999-06-01');
    // Usage in a window that holds no live call, so the numbers are exact.
    const store = new SqliteStore(openSqlite(dbPath));
    const record = (principal: string, ts: number, status: number, p: number, c: number, cost: number): UsageRecord => ({
      ts, requestId: `r-${ts}`, principal, method: 'POST', path: '/v1/chat/completions', model: 'gpt-4o', status, durationMs: 5, stream: true, promptTokens: p, completionTokens: c, costMicroUsd: cost, estimated: false,
    });
    const base = Date.parse(since);
    await store.recordUsage([record(bobId, base + 1000, 200, 40, 60, 700), record(bobId, base + 2000, 500, 5, 0, 12), record('env-key-2', base + 3000, 200, 1, 2, 3)]);
    await store.close();
  });

  const cases: string[][] = [
    ['keys', 'list'],
    ['keys', 'list', '--json'],
    ['keys', 'show', 'bob'],
    ['keys', 'show', 'bob', '--json'],
    ['usage', '--since', since, '--until', until],
    ['usage', '--since', since, '--until', until, '--json'],
    ['usage', '--key', 'bob', '--since', since, '--until', until],
    ['usage', '--key', 'bob', '--since', since, '--until', until, '--json'],
    ['prices', 'list'],
    ['prices', 'list', '--json'],
    ['keys', 'show', 'nobody'],
    ['keys', 'create', '--name', 'bob'],
    ['keys', 'update', 'bob', '--ips', 'not-an-ip'],
    ['keys', 'update', 'bob', '--endpoints', 'GET /v1/models'],
    ['usage', '--since', '2026-13-45T99:00:00Z'],
  ];

  it.each(cases.map((args) => [args.join(' '), args] as const))('proxygpt %s', async (_name, args) => {
    const viaServer = await remote(...args);
    const viaDatabase = await direct(...args);
    expect(viaServer.stdout + viaServer.stderr).not.toBe('');
    expect(viaServer).toEqual(viaDatabase);
    expect(viaServer.stdout + viaServer.stderr).not.toContain(ADMIN);
  });

  it('shows the recorded usage per key (a check that the comparison above compared something)', async () => {
    const view = await remoteJson('usage', '--since', since, '--until', until);
    expect(view).toMatchObject({ requests: 3, prompt_tokens: 46, completion_tokens: 62, usd: 0.000715, status_counts: { '200': 2, '500': 1 } });
    expect(view.by_key[bobId]).toMatchObject({ requests: 2, status_counts: { '200': 1, '500': 1 } });
    const conflict = await remote('keys', 'create', '--name', 'bob');
    expect(conflict).toMatchObject({ code: 1, stderr: 'proxygpt: A key named "bob" already exists.\n' });
  });
});

describe('remote mode: admin key and server problems', () => {
  it('fails with exit 1 on a wrong admin key, without showing either key', async () => {
    const wrong = 'wrong-admin-key-ffffffffffffffff';
    for (const result of [
      await runCli(['--url', gw.url, 'keys', 'list'], { env: { PROXYGPT_ADMIN_KEY: wrong } }),
      await runCli(['--url', gw.url, '--admin-key', wrong, 'keys', 'create', '--name', 'mallory'], { env: {} }),
    ]) {
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`proxygpt: ${gw.url} refused the admin key (HTTP 401): check --admin-key or PROXYGPT_ADMIN_KEY\n`);
      expect(result.stderr).not.toContain(wrong);
      expect(result.stderr).not.toContain(ADMIN);
    }
    expect((await remoteJson<{ data: Array<{ name: string }> }>('keys', 'list')).data.map((k) => k.name)).not.toContain('mallory');
  });

  it('a proxy key is not an admin key', async () => {
    const result = await runCli(['--url', gw.url, 'keys', 'list'], { env: { PROXYGPT_ADMIN_KEY: 'pgpt-test-key-aaaaaaaaaaaaaaaa' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('refused the admin key');
  });

  it('needs an admin key: a usage error (exit 2) without one', async () => {
    const result = await runCli(['--url', gw.url, 'keys', 'list'], { env: {} });
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'proxygpt: --url needs the admin key: set PROXYGPT_ADMIN_KEY or pass --admin-key\n' });
  });

  it('says so when the server has no admin API', async () => {
    const plain = await startGateway();
    try {
      const result = await runCli(['--url', plain.url, 'keys', 'list'], { env });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`proxygpt: ${plain.url} has no admin API (HTTP 404): is it a ProxyGPT server with PROXYGPT_ADMIN_KEY set?\n`);
    } finally {
      await plain.close();
    }
  });

  it('says so when the server cannot be reached', async () => {
    const port = await new Promise<number>((done) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => done(p));
      });
    });
    const result = await runCli(['--url', `http://127.0.0.1:${port}`, 'keys', 'list'], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^proxygpt: could not reach http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`));
    expect(result.stderr).not.toContain(ADMIN);
  });

  it('rejects a --url that is not an http address, and --db with --url', async () => {
    expect(await runCli(['--url', 'ftp://example.test', 'keys', 'list'], { env })).toMatchObject({ code: 2, stderr: 'proxygpt: --url must be an http:// or https:// address (got "ftp:")\n' });
    expect(await runCli(['--url', gw.url, '--db', dbPath, 'keys', 'list'], { env })).toMatchObject({ code: 2, stderr: 'proxygpt: give either --db (work on the database) or --url (a running server), not both\n' });
  });
});
