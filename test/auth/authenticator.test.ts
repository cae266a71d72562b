/**
 * The Authenticator on its own, with a real SQLite store: which principal each kind of key yields
 * (environment keys by position, stored keys with their policy and version), and the exact 401
 * each refusal gives (missing, not a key, unknown, disabled, expired — at the very millisecond of
 * expiry), so a client and an admin can tell why a key was refused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { Authenticator } from '../../src/auth/authenticator.js';
import { KeyRing } from '../../src/auth/keys.js';
import { hashSecret } from '../../src/auth/secrets.js';
import { ApiError } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
const store = await openStore({ kind: 'sqlite', path: join(dir, 'auth.db') });
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

let now = 1_000_000;
const auth = new Authenticator(new KeyRing(['env-one-secret', 'env-two-secret']), store, () => now);

async function stored(name: string, secret: string, extra: { expiresAt?: number | null; disabled?: boolean } = {}) {
  const key = await store.createKey({ id: `key_${name}`, name, notes: '', hash: hashSecret(secret), prefix: secret.slice(0, 9), expiresAt: extra.expiresAt ?? null, policy: { requestsPerHour: 5 }, now: 500 });
  if (extra.disabled) await store.updateKey(key.id, { disabled: true }, 600);
  return key;
}

async function refusal(header: string | string[] | undefined): Promise<{ status: number; code: string | null; message: string }> {
  try {
    await auth.authenticate(header);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    return { status: e.statusCode, code: e.code, message: e.message };
  }
  throw new Error('expected a refusal');
}

describe('Authenticator', () => {
  it('names environment keys by position, with no policy', async () => {
    expect(await auth.authenticate('Bearer env-two-secret')).toEqual({ id: 'env-key-2', name: 'env-key-2', source: 'env', policy: null, version: 0, expiresAt: null });
    expect((await auth.authenticate('Bearer env-one-secret')).id).toBe('env-key-1');
  });

  it('finds a stored key by its hash, with its policy, version and expiry', async () => {
    await stored('alice', 'pgpt-alice-secret-000000', { expiresAt: now + 10 });
    expect(await auth.authenticate('Bearer pgpt-alice-secret-000000')).toEqual({
      id: 'key_alice', name: 'alice', source: 'stored', policy: { requestsPerHour: 5 }, version: 500, expiresAt: now + 10,
    });
  });

  it('refuses a missing or malformed header, saying how to send the key', async () => {
    for (const header of [undefined, '', 'Basic abc', 'Bearer']) {
      expect(await refusal(header)).toEqual({ status: 401, code: 'invalid_api_key', message: 'Missing proxy key. Send it as "Authorization: Bearer <your ProxyGPT key>".' });
    }
  });

  it('refuses an unknown key, stored-looking or not, with the same message', async () => {
    for (const header of ['Bearer not-a-key', 'Bearer pgpt-nobody-has-this-key']) {
      expect(await refusal(header)).toEqual({ status: 401, code: 'invalid_api_key', message: 'Invalid proxy key. Check the key your ProxyGPT admin gave you.' });
    }
  });

  it('looks up only keys in the gateway format (pgpt-), whatever the store holds', async () => {
    await stored('legacy', 'plain-secret-without-prefix');
    expect(await refusal('Bearer plain-secret-without-prefix')).toEqual({ status: 401, code: 'invalid_api_key', message: 'Invalid proxy key. Check the key your ProxyGPT admin gave you.' });
  });

  it('refuses a disabled key, saying so', async () => {
    await stored('bob', 'pgpt-bob-secret-00000000', { disabled: true });
    expect(await refusal('Bearer pgpt-bob-secret-00000000')).toEqual({ status: 401, code: 'invalid_api_key', message: 'This proxy key has been disabled by the admin.' });
  });

  it('refuses an expired key from the millisecond of its expiry on', async () => {
    await stored('carol', 'pgpt-carol-secret-000000', { expiresAt: now + 1 });
    expect((await auth.authenticate('Bearer pgpt-carol-secret-000000')).id).toBe('key_carol');
    now += 1;
    expect(await refusal('Bearer pgpt-carol-secret-000000')).toEqual({ status: 401, code: 'invalid_api_key', message: 'This proxy key has expired.' });
  });
});
