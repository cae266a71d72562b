/**
 * `proxygpt migrate --from <sqlite> --to postgres://…` (issue 9, moving up): a SQLite install's
 * keys (hashes: the same secrets work), price overrides and usage history arrive in Postgres; a
 * second run copies nothing twice; bad arguments exit 1 with a message and no password shown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { hashSecret } from '../../src/auth/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store, UsageRecord } from '../../src/contract.js';
import { tempDir } from '../helpers.js';
import { adminQuery, dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { runCli, runJson } from './cli.js';

const postgres = await postgresTarget();
const SECRET = /pgpt-[A-Za-z0-9_-]{32}/;

describe.skipIf(!postgres.available)('proxygpt migrate', () => {
  const schema = uniqueSchema('migrate');
  let dir: string;
  let dbPath: string;
  let target: string;
  const secrets: Record<string, string> = {};
  let pg: Store;

  beforeAll(async () => {
    dir = tempDir();
    dbPath = join(dir, 'proxygpt.db');
    await adminQuery(postgres.url, `CREATE SCHEMA ${schema}`);
    const url = new URL(postgres.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    target = url.toString();
    const env = { PROXYGPT_DATABASE_URL: dbPath };
    for (const name of ['alice', 'bob']) {
      const created = await runCli(['keys', 'create', '--name', name, '--rph', '100'], { env });
      expect(created.code).toBe(0);
      secrets[name] = SECRET.exec(created.stdout)![0];
    }
    expect((await runCli(['prices', 'set', 'my-model', '--input', '1.5', '--output', '3'], { env })).code).toBe(0);
    const sqlite = await openStore({ kind: 'sqlite', path: dbPath });
    const alice = (await sqlite.getKey('alice'))!;
    const record = (i: number): UsageRecord => ({
      ts: Date.now() - 60_000 + i, requestId: `r${i}`, principal: alice.id, method: 'POST', path: '/v1/chat/completions', model: 'gpt-4o-mini',
      status: 200, durationMs: 5, stream: false, promptTokens: 10, completionTokens: 5, costMicroUsd: 7, estimated: false,
    });
    await sqlite.recordUsage(Array.from({ length: 25 }, (_, i) => record(i)));
    await sqlite.close();
  });
  afterAll(async () => {
    await pg?.close();
    await dropSchema(postgres.url, schema);
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies keys, prices and usage; the same secrets are found in Postgres', async () => {
    const result = await runCli(['migrate', '--from', dbPath, '--to', target]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('keys: 2 new, 0 updated, 0 unchanged');
    expect(result.stdout).toContain('price overrides: 1');
    expect(result.stdout).toContain('usage records: 25 copied, 0 there already');
    pg = await openStore({ kind: 'postgres', url: target });
    for (const name of ['alice', 'bob']) expect((await pg.findKeyByHash(hashSecret(secrets[name]!)))?.name).toBe(name);
    expect((await pg.getKey('alice'))?.policy.requestsPerHour).toBe(100);
    expect(await pg.priceOverrides()).toMatchObject({ 'my-model': { input: 1.5, output: 3 } });
    const usage = await pg.usage({ sinceMs: Date.now() - 3_600_000, untilMs: Date.now() + 1 });
    expect(usage.total).toMatchObject({ requests: 25, promptTokens: 250, completionTokens: 125 });
  });

  it('a second run copies nothing twice (--json: the report)', async () => {
    const report = await runJson<{ keys: { inserted: number; unchanged: number }; usage: { copied: number; alreadyThere: number } }>(['migrate', '--from', dbPath, '--to', target]);
    expect(report.keys).toMatchObject({ inserted: 0, unchanged: 2 });
    expect(report.usage).toEqual({ copied: 0, alreadyThere: 25 });
    expect((await pg.usage({ sinceMs: 0, untilMs: Date.now() + 1 })).total.requests).toBe(25);
  });

  it('refuses what it cannot do, with exit 1 and no password', async () => {
    const missing = await runCli(['migrate', '--from', join(dir, 'nope.db'), '--to', target]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no SQLite database at');
    const notPostgres = await runCli(['migrate', '--from', dbPath, '--to', 'mysql://u:hunter2@h/db']);
    expect(notPostgres.code).toBe(1);
    expect(notPostgres.stderr).not.toContain('hunter2');
    const unreachable = await runCli(['migrate', '--from', dbPath, '--to', 'postgres://u:hunter2@127.0.0.1:1/db']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/PROXYGPT_DATABASE_URL|Postgres/);
    expect(unreachable.stderr).not.toContain('hunter2');
  }, 20_000);
});
