/**
 * openStore opens the configured store and migrates it: a SQLite file is created with its schema
 * (and reopened with its data), the SqliteStore constructor itself leaves the schema alone, and a
 * Postgres store that cannot be opened rejects with StoreUnavailable and no password in sight.
 * createApp reaches the store only through it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { StoreUnavailable } from '../../src/store/errors.js';
import { openStore } from '../../src/store/open.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../helpers.js';

const key = { id: 'key_one', name: 'one', notes: '', hash: 'h1', prefix: 'pgpt-One…', expiresAt: null, policy: { requestsPerHour: 3 }, now: 1_000 };
// Nothing listens on port 1, with or without a Postgres backend in this build.
const UNREACHABLE = 'postgres://gateway:pg-secret-1b2c@127.0.0.1:1/proxygpt';

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('openStore: SQLite', () => {
  it('creates the file with its schema, and reopens it with the data kept (migrating again is harmless)', async () => {
    const path = join(dir, 'nested', 'proxygpt.db');
    const store = await openStore({ kind: 'sqlite', path });
    expect(existsSync(path)).toBe(true);
    expect(await store.listKeys()).toEqual([]);
    await store.createKey(key);
    await store.setPriceOverride('gpt-x', { input: 1, cachedInput: 0.5, output: 2 });
    await store.close();

    const again = await openStore({ kind: 'sqlite', path });
    try {
      await again.migrate();
      expect(await again.getKey('one')).toMatchObject({ id: 'key_one', policy: { requestsPerHour: 3 } });
      expect(await again.priceOverrides()).toEqual({ 'gpt-x': { input: 1, cachedInput: 0.5, output: 2 } });
    } finally {
      await again.close();
    }
  });

  it('the SqliteStore constructor touches no schema: only migrate() creates the tables', async () => {
    const store = new SqliteStore(openSqlite(join(dir, 'bare.db')));
    try {
      await expect(store.listKeys()).rejects.toThrow(/no such table/);
      await store.migrate();
      expect(await store.listKeys()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('a path that cannot be a database rejects', async () => {
    await expect(openStore({ kind: 'sqlite', path: dir })).rejects.toThrow();
  });
});

describe('openStore: Postgres', () => {
  it('a store that cannot be opened rejects with StoreUnavailable, its message free of the password', async () => {
    const err = await openStore({ kind: 'postgres', url: UNREACHABLE }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toMatch(/^the Postgres store could not be opened: ./);
    expect((err as Error).message).not.toContain('pg-secret-1b2c');
  });

  it('createApp fails the same way, before any limiter journal is opened', async () => {
    const journal = join(dir, 'limits.db');
    const { config } = loadConfig({
      OPENAI_API_KEY: 'sk-upstream-secret-0123456789abcdef',
      PROXYGPT_API_KEY: 'pgpt-test-key-aaaaaaaaaaaaaaaa',
      PROXYGPT_DATABASE_URL: UNREACHABLE,
      PROXYGPT_LIMITER: 'memory',
      PROXYGPT_LIMITS_PATH: journal,
      LOG_LEVEL: 'silent',
    });
    expect(config.limiter).toEqual({ kind: 'memory', journalPath: journal });
    await expect(createApp(config)).rejects.toBeInstanceOf(StoreUnavailable);
    expect(existsSync(journal)).toBe(false);
  });
});
