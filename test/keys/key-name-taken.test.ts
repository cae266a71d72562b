/**
 * A key name used twice, as a domain error: SqliteStore throws KeyNameTaken (not the driver's
 * SQLITE_CONSTRAINT error) on create and on rename, and only for the name; KeyService turns
 * KeyNameTaken, from whichever backend, into the admin API's 409 `conflict`, and no longer reads
 * driver error codes. (The SqliteStore part belongs in test/store; it is here while that folder
 * is being reworked on another branch.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NewKey, Store } from '../../src/contract.js';
import { ApiError } from '../../src/errors.js';
import { KeyService } from '../../src/keys/service.js';
import { KeyNameTaken } from '../../src/store/errors.js';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../helpers.js';

const newKey = (id: string, name: string, hash = `hash-${id}`): NewKey => ({
  id, name, notes: '', hash, prefix: 'pgpt-AbCd…', expiresAt: null, policy: {}, now: 1_000,
});

async function thrown(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('SqliteStore: a name already used is KeyNameTaken', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = tempDir();
    store = await openStore({ kind: 'sqlite', path: join(dir, 'names.db') });
    await store.createKey(newKey('key_a', 'alice'));
    await store.createKey(newKey('key_b', 'bob'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('on create, naming the name; nothing is stored', async () => {
    const err = await thrown(() => store.createKey(newKey('key_c', 'alice')));
    expect(err).toBeInstanceOf(KeyNameTaken);
    expect((err as KeyNameTaken).keyName).toBe('alice');
    expect((err as Error).message).toBe('a key named "alice" already exists');
    expect(await store.getKey('key_c')).toBeNull();
    expect((await store.listKeys()).map((k) => k.id)).toEqual(['key_a', 'key_b']);
  });

  it('on rename; the key keeps its name', async () => {
    const err = await thrown(() => store.updateKey('key_b', { name: 'alice', notes: 'renamed' }, 2_000));
    expect(err).toBeInstanceOf(KeyNameTaken);
    expect((err as KeyNameTaken).keyName).toBe('alice');
    expect(await store.getKey('key_b')).toMatchObject({ name: 'bob', notes: '', updatedAt: 1_000 });
  });

  it('only for the name: another clash (the same secret hash) stays a different error', async () => {
    const err = await thrown(() => store.createKey(newKey('key_c', 'carol', 'hash-key_a')));
    expect(err).not.toBeInstanceOf(KeyNameTaken);
    expect(String((err as Error).message)).toMatch(/api_keys\.hash/);
  });

  it('renaming a key to its own name is no clash', async () => {
    expect(await store.updateKey('key_a', { name: 'alice' }, 2_000)).toMatchObject({ name: 'alice', updatedAt: 2_000 });
  });
});

describe('KeyService: KeyNameTaken from any backend is 409 conflict', () => {
  /** A store whose createKey / updateKey fail with `err`; everything else as an empty store. */
  function failingStore(err: Error): Store {
    const existing = { id: 'key_x', name: 'x', notes: '', prefix: 'p', createdAt: 1, updatedAt: 1, expiresAt: null, disabled: false, policy: {} };
    return {
      createKey: () => Promise.reject(err),
      updateKey: () => Promise.reject(err),
      getKey: async () => existing,
    } as unknown as Store;
  }
  const config = { allowedEndpoints: [{ method: 'POST' as const, path: '/v1/chat/completions' }], allowedModels: null };

  it('on create and on update, with the admin API message', async () => {
    const keys = new KeyService(failingStore(new KeyNameTaken('dup')), config);
    for (const attempt of [() => keys.create({ name: 'dup' }), () => keys.update('key_x', { name: 'dup' })]) {
      const err = await thrown(attempt);
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({ statusCode: 409, code: 'conflict', message: 'A key named "dup" already exists.' });
    }
  });

  it('a driver error is not read for its code any more: it passes through as it is', async () => {
    const driver = Object.assign(new Error('UNIQUE constraint failed: api_keys.name'), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
    const keys = new KeyService(failingStore(driver), config);
    expect(await thrown(() => keys.create({ name: 'dup' }))).toBe(driver);
  });
});
