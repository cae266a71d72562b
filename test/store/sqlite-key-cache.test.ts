/**
 * The SQLite store keeps keys found by hash between calls (store/sqlite-key-cache.ts). What must
 * hold is what held without the cache: a change made on another connection to the same file (another
 * worker, the CLI in direct mode) or on this one is seen by the very next lookup.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { hashSecret } from '../../src/auth/secrets.js';
import { tempDir } from '../helpers.js';

let dir: string;
let gateway: SqliteStore;
let other: SqliteStore;
const SECRET = 'pgpt-cache-test-secret-0000000000000000';
const HASH = hashSecret(SECRET);

beforeEach(async () => {
  dir = tempDir();
  const path = join(dir, 'gateway.db');
  gateway = new SqliteStore(openSqlite(path));
  await gateway.migrate();
  other = new SqliteStore(openSqlite(path));
  await other.createKey({ id: 'key_a', name: 'alice', notes: '', hash: HASH, prefix: 'pgpt-cach…', expiresAt: null, policy: { requestsPerHour: 5 }, now: 1 });
});

afterEach(async () => {
  await gateway.close();
  await other.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SQLite key cache', () => {
  it('hands out the same key while nothing changed (the point of the cache)', async () => {
    const first = await gateway.findKeyByHash(HASH);
    expect(first).toMatchObject({ id: 'key_a', disabled: false });
    expect(await gateway.findKeyByHash(HASH)).toBe(first);
  });

  it('sees a key disabled, edited, rotated and deleted on another connection at the next lookup', async () => {
    expect((await gateway.findKeyByHash(HASH))?.disabled).toBe(false);
    await other.updateKey('key_a', { disabled: true }, 2);
    expect((await gateway.findKeyByHash(HASH))?.disabled).toBe(true);
    await other.updateKey('key_a', { disabled: false, policy: { requestsPerHour: 9 } }, 3);
    expect(await gateway.findKeyByHash(HASH)).toMatchObject({ disabled: false, policy: { requestsPerHour: 9 } });
    await other.setKeySecret('key_a', hashSecret('pgpt-another-secret'), 'pgpt-anot…', 4);
    expect(await gateway.findKeyByHash(HASH)).toBeNull();
    expect((await gateway.findKeyByHash(hashSecret('pgpt-another-secret')))?.id).toBe('key_a');
    await other.deleteKey('key_a');
    expect(await gateway.findKeyByHash(hashSecret('pgpt-another-secret'))).toBeNull();
  });

  it("sees its own connection's key writes at the next lookup (they leave data_version alone)", async () => {
    expect((await gateway.findKeyByHash(HASH))?.policy).toEqual({ requestsPerHour: 5 });
    await gateway.updateKey('key_a', { policy: { requestsPerHour: 1 } }, 2);
    expect((await gateway.findKeyByHash(HASH))?.policy).toEqual({ requestsPerHour: 1 });
    await gateway.setKeySecret('key_a', hashSecret('pgpt-rotated'), 'pgpt-rota…', 3);
    expect(await gateway.findKeyByHash(HASH)).toBeNull();
    await gateway.deleteKey('key_a');
    expect(await gateway.findKeyByHash(hashSecret('pgpt-rotated'))).toBeNull();
  });

  it('finds a key created on another connection after an unknown hash was looked up', async () => {
    const later = hashSecret('pgpt-created-later');
    expect(await gateway.findKeyByHash(later)).toBeNull();
    await other.createKey({ id: 'key_b', name: 'bob', notes: '', hash: later, prefix: 'pgpt-crea…', expiresAt: null, policy: {}, now: 5 });
    expect((await gateway.findKeyByHash(later))?.name).toBe('bob');
  });
});
