/**
 * What only the Postgres store has: migrations applied once when several instances start at the
 * same moment, a start that fails fast and names PROXYGPT_DATABASE_URL (password redacted), a
 * connection lost while running (StoreUnavailable, then recovery without a restart, through a TCP
 * proxy the test cuts), byte order even where the columns use a linguistic collation, and the
 * URL redaction helper.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createServer, type Socket } from 'node:net';
import { openPostgresStore, redactDatabaseUrl } from '../../src/store/postgres.js';
import pg from 'pg';
import { migrate, MIGRATIONS } from '../../src/store/postgres-migrations.js';
import { splitStartupOptions } from '../../src/store/postgres-url.js';
import { StoreUnavailable } from '../../src/store/errors.js';
import type { Store } from '../../src/contract.js';
import { freePort } from '../support/server-process.js';
import { adminQuery, dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { storeCases } from './store-contract.js';
import { newKey, type StoreBackend } from './store-contract-fixtures.js';

const postgres = await postgresTarget();
/** The byte-order cases need no second store. */
const NO_BACKEND: StoreBackend = {
  openSibling: () => Promise.reject(new Error('not here')),
  openFromBeforeRollups: () => Promise.reject(new Error('not here')),
};

/** The test server's URL with another host and port (and optionally user and password). */
function urlAt(port: number, auth?: { user: string; password: string }): string {
  const url = new URL(postgres.url);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  if (auth) {
    url.username = auth.user;
    url.password = auth.password;
  }
  return url.toString();
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe('redactDatabaseUrl', () => {
  it.each([
    ['postgres://proxy:s3cret@db.example:5432/gateway', 'postgres://proxy:***@db.example:5432/gateway'],
    ['postgresql://proxy:p%40ss%3Aword@10.0.0.5/gateway', 'postgresql://proxy:***@10.0.0.5/gateway'],
    ['postgres://proxy@db:6543/gateway', 'postgres://proxy@db:6543/gateway'],
    ['postgres://db/gateway', 'postgres://db/gateway'],
    ['postgres://proxy:x@db/gw?sslmode=require&password=hunter2', 'postgres://proxy:***@db/gw?sslmode=require&password=***'],
    ['postgres://db/gw?PassWord=hunter2&application_name=a', 'postgres://db/gw?PassWord=***&application_name=a'],
  ])('%s → %s', (url, expected) => {
    expect(redactDatabaseUrl(url)).toBe(expected);
  });

  it.each([
    ['postgres://proxy:50%off@db/gw', 'postgres://proxy:***@db/gw'],
    ['postgres://proxy:a/b@c@db/gw', 'postgres://***@db/gw'],
  ])('a password that breaks URL parsing is hidden too: %s', (url, expected) => {
    expect(redactDatabaseUrl(url)).toBe(expected);
  });

  it('hides the user part of something that is not a URL at all', () => {
    const shown = redactDatabaseUrl('postgres://us er:hun ter2@[bad/db?password=hunter3');
    expect(shown).not.toContain('hun ter2');
    expect(shown).not.toContain('hunter3');
    expect(shown).toContain('***');
  });

  it('takes a startup `options` parameter out of the URL, for the store to join with its own', () => {
    expect(splitStartupOptions('postgres://u@h/db?options=-c%20statement_timeout%3D5000&sslmode=disable')).toStrictEqual({
      url: 'postgres://u@h/db?sslmode=disable',
      options: '-c statement_timeout=5000',
    });
    expect(splitStartupOptions('postgres://u@h/db')).toStrictEqual({ url: 'postgres://u@h/db', options: undefined });
  });
});

describe('opening a Postgres store that cannot be reached', () => {
  it('rejects at once on a closed port, naming PROXYGPT_DATABASE_URL with the password redacted', async () => {
    const port = await freePort();
    const err = await rejection(openPostgresStore(urlAt(port, { user: 'proxy', password: 'hunter2-secret' })));
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect(err.message).toContain('PROXYGPT_DATABASE_URL');
    expect(err.message).toContain(`postgres://proxy:***@127.0.0.1:${port}/`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).not.toContain('hunter2-secret');
  });

  it('gives up after the connect timeout on a server that accepts and never answers', async () => {
    const silent = new Set<Socket>();
    const server = createServer((socket) => void silent.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const err = await rejection(openPostgresStore(urlAt(port, { user: 'proxy', password: 'pw-x' }), { connectTimeoutMs: 300 }));
      expect(err).toBeInstanceOf(StoreUnavailable);
      expect(err.message).toContain('PROXYGPT_DATABASE_URL');
      expect(err.message).toMatch(/timeout/i);
      expect(err.message).not.toContain('pw-x');
    } finally {
      for (const socket of silent) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('rejects an invalid schema name before connecting', async () => {
    const err = await rejection(openPostgresStore(postgres.url, { schema: 'Robert"; DROP' }));
    expect(err.message).toContain('schema');
  });
});

describe.skipIf(!postgres.available)('Postgres store', () => {
  const schemas: string[] = [];
  const stores: Store[] = [];
  const freshSchema = (label: string) => {
    const schema = uniqueSchema(label);
    schemas.push(schema);
    return schema;
  };
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(postgres.url, schema);
  });

  it('a wrong database name rejects with the server’s reason and PROXYGPT_DATABASE_URL', async () => {
    const url = new URL(postgres.url);
    url.pathname = `/no_such_db_${process.pid}`;
    const err = await rejection(openPostgresStore(url.toString()));
    expect(err).not.toBeInstanceOf(StoreUnavailable);
    expect(err.message).toContain('PROXYGPT_DATABASE_URL');
    expect(err.message).toContain(`no_such_db_${process.pid}`);
    expect(err.message).toMatch(/does not exist/);
  });

  it('five instances starting at the same moment on a fresh schema all start; each migration is applied once', async () => {
    const schema = freshSchema('migrate5');
    const logs: string[] = [];
    const opened = await Promise.all(
      [0, 1, 2, 3, 4].map(() => openPostgresStore(postgres.url, { schema, poolSize: 2, log: (m) => logs.push(m) })),
    );
    stores.push(...opened);
    const rows = await adminQuery<{ version: number }>(postgres.url, `SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(rows.map((r) => r.version)).toStrictEqual(MIGRATIONS.map((m) => m.version));
    expect(logs.filter((l) => l.includes('applied migration'))).toHaveLength(1);
    // They share one database: what one writes, the others read.
    await opened[0]!.createKey(newKey({ id: 'k', name: 'shared', hash: 'h' }));
    for (const store of opened) expect((await store.findKeyByHash('h'))?.name).toBe('shared');
  });

  it('two instances on one database: a key created, changed, rotated, revoked or deleted on one is seen by the other on its next lookup', async () => {
    const schema = freshSchema('instances');
    const a = await openPostgresStore(postgres.url, { schema, poolSize: 2 });
    const b = await openPostgresStore(postgres.url, { schema, poolSize: 2 });
    stores.push(a, b);
    expect(await b.findKeyByHash('h1')).toBeNull(); // b's pool is warm before a writes
    await a.createKey(newKey({ id: 'k', name: 'alice', hash: 'h1', now: 1_000 }));
    expect((await b.findKeyByHash('h1'))?.name).toBe('alice');
    await a.updateKey('k', { policy: { requestsPerHour: 5 } }, 2_000);
    expect(await b.findKeyByHash('h1')).toMatchObject({ updatedAt: 2_000, policy: { requestsPerHour: 5 } });
    await a.setKeySecret('k', 'h2', 'pgpt-New', 3_000);
    expect(await b.findKeyByHash('h1')).toBeNull();
    expect((await b.findKeyByHash('h2'))?.prefix).toBe('pgpt-New');
    await b.updateKey('k', { disabled: true }, 4_000);
    expect((await a.findKeyByHash('h2'))?.disabled).toBe(true);
    await b.recordUsage([{ ts: 10, requestId: 'r', principal: 'k', method: 'POST', path: '/v1/chat/completions', model: null, status: 200, durationMs: 1, stream: false, promptTokens: 3, completionTokens: 4, costMicroUsd: 5, estimated: false }]);
    expect((await a.usage({ sinceMs: 0, untilMs: 100 })).total).toMatchObject({ requests: 1, promptTokens: 3, completionTokens: 4 });
    await a.deleteKey('k');
    expect(await b.findKeyByHash('h2')).toBeNull();
  });

  it('a later start applies nothing, keeps the data, and says when the database is newer than the code', async () => {
    const schema = freshSchema('restart');
    const first = await openPostgresStore(postgres.url, { schema });
    await first.createKey(newKey({ id: 'k', name: 'kept', hash: 'h' }));
    await first.close();
    await adminQuery(postgres.url, `INSERT INTO "${schema}".schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)`);
    const logs: string[] = [];
    const again = await openPostgresStore(postgres.url, { schema, log: (m) => logs.push(m) });
    stores.push(again);
    expect(logs.some((l) => l.includes('applied migration'))).toBe(false);
    expect(logs.filter((l) => l.includes('999'))).toHaveLength(1);
    expect((await again.getKey('kept'))?.id).toBe('k');
    await again.migrate();
    expect((await adminQuery(postgres.url, `SELECT version FROM "${schema}".schema_migrations`)).length).toBe(MIGRATIONS.length + 1);
  });

  it('a newer release applies only its new migrations; a failing one leaves the database as it was', async () => {
    const schema = freshSchema('versions');
    // The version a next release would add.
    const NEXT = MIGRATIONS[MIGRATIONS.length - 1]!.version + 1;
    const store = await openPostgresStore(postgres.url, { schema });
    stores.push(store);
    await store.createKey(newKey({ id: 'k', name: 'kept', hash: 'h' }));
    const pool = new pg.Pool({ connectionString: postgres.url, options: `-c search_path=${schema}`, max: 1 });
    try {
      const client = await pool.connect();
      try {
        const broken = [...MIGRATIONS, { version: NEXT, name: 'extra', sql: 'CREATE TABLE extra (x int)' }, { version: NEXT + 1, name: 'broken', sql: 'ALTER TABLE nowhere ADD COLUMN y int' }];
        await expect(migrate(client, schema, broken)).rejects.toThrow(/nowhere/);
        const next = [...MIGRATIONS, { version: NEXT, name: 'extra', sql: 'CREATE TABLE extra (x int)' }];
        expect(await migrate(client, schema, next)).toStrictEqual({ applied: [NEXT], unknown: [] });
        expect(await migrate(client, schema, next)).toStrictEqual({ applied: [], unknown: [] });
        expect(await migrate(client, schema, MIGRATIONS)).toStrictEqual({ applied: [], unknown: [NEXT] });
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
    const versions = await adminQuery<{ version: number; name: string }>(postgres.url, `SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`);
    expect(versions.map((v) => v.version)).toStrictEqual([...MIGRATIONS.map((m) => m.version), NEXT]);
    expect((await store.getKey('kept'))?.id).toBe('k');
  });

  it('a connection lost while running is StoreUnavailable; the store recovers by itself when the server is back', async () => {
    const target = new URL(postgres.url);
    const proxy = await startTcpProxy(Number(target.port || 5432), target.hostname);
    try {
      const logs: string[] = [];
      const store = await openPostgresStore(urlAt(proxy.port), { schema: freshSchema('outage'), poolSize: 2, log: (m) => logs.push(m) });
      stores.push(store);
      await store.createKey(newKey({ id: 'k', name: 'alice', hash: 'h' }));

      proxy.cut();
      for (const call of [() => store.findKeyByHash('h'), () => store.ping(), () => store.recordUsage([{ ts: 1, requestId: 'r', principal: 'p', method: 'POST', path: '/', model: null, status: 200, durationMs: 1, stream: false, promptTokens: 1, completionTokens: 1, costMicroUsd: 1, estimated: false }])]) {
        expect(await rejection(call())).toBeInstanceOf(StoreUnavailable);
      }

      proxy.restore();
      expect((await store.findKeyByHash('h'))?.name).toBe('alice');
      await expect(store.ping()).resolves.toBeUndefined();
      expect(logs.join('\n')).not.toContain('password');
    } finally {
      await proxy.close();
    }
  });

  it('keeps byte order where the columns use a linguistic collation (a database created with en_US)', async () => {
    const orderCases = storeCases.filter((c) => c.name.includes('byte order'));
    expect(orderCases.length).toBe(2);
    const schema = freshSchema('collation');
    const store = await openPostgresStore(postgres.url, { schema });
    stores.push(store);
    const collation = await adminQuery<{ collname: string }>(postgres.url, "SELECT collname FROM pg_collation WHERE collname IN ('en-x-icu', 'en_US.utf8') ORDER BY collname LIMIT 1");
    expect(collation.length, 'an ICU or glibc en_US collation on the test server').toBe(1);
    const linguistic = `"${collation[0]!.collname}"`;
    await adminQuery(postgres.url, `ALTER TABLE "${schema}".api_keys ALTER COLUMN id TYPE text COLLATE ${linguistic}`);
    await adminQuery(postgres.url, `ALTER TABLE "${schema}".usage_events ALTER COLUMN principal TYPE text COLLATE ${linguistic}`);
    for (const c of orderCases) await c.run(store, NO_BACKEND);
  });
});
