/**
 * Who is calling: a proxy key from the environment (constant-time match, see keys.ts) or a stored
 * key (looked up by hash on every request, so revoking, disabling or expiring a key takes effect
 * on the very next request in every worker; the SQLite store keeps found keys only while the
 * database file is unchanged, see store/sqlite-key-cache.ts, so nothing goes stale).
 */
import { unauthorized } from '../errors.js';
import type { KeyPolicy, Store, StoredKey } from '../contract.js';
import { bearerToken, type KeyRing } from './keys.js';
import { hashSecret, KEY_PREFIX } from './secrets.js';

export interface Principal {
  /** Safe to log and store; never contains the key. */
  id: string;
  name: string;
  source: 'env' | 'stored';
  /** Per-key policy of a stored key; null for environment keys (global policy only). */
  policy: KeyPolicy | null;
  /** Changes whenever the stored key changes (cache key for compiled policies). */
  version: number;
  expiresAt: number | null;
}

/** The principal of a stored key (whether it may be used now is the authenticator's to check). */
export const storedPrincipal = (key: StoredKey): Principal => ({ id: key.id, name: key.name, source: 'stored', policy: key.policy, version: key.updatedAt, expiresAt: key.expiresAt });
/** The principal of an environment key (`env-key-N`): the gateway's own limits only. */
export const envPrincipal = (id: string): Principal => ({ id, name: id, source: 'env', policy: null, version: 0, expiresAt: null });

/** Whether a stored key can be used at `now`: disabled by the admin, past its expiry, or active. */
export function keyStatus(key: Pick<StoredKey, 'disabled' | 'expiresAt'>, now: number): 'active' | 'disabled' | 'expired' {
  if (key.disabled) return 'disabled';
  return key.expiresAt !== null && key.expiresAt <= now ? 'expired' : 'active';
}

export class Authenticator {
  constructor(
    private readonly envKeys: KeyRing,
    private readonly store: Store,
    private readonly clock: () => number,
  ) {}

  /** `header`: the Authorization value, or all of them when it was sent more than once (refused). */
  async authenticate(header: string | string[] | undefined): Promise<Principal> {
    if (Array.isArray(header) && header.length > 1) throw unauthorized('Send the proxy key in one Authorization header; this request has several.');
    const token = bearerToken(header);
    if (token === null) throw unauthorized('Missing proxy key. Send it as "Authorization: Bearer <your ProxyGPT key>".');
    // One SHA-256 for both: the environment keys' constant-time match and the stored key's hash.
    const tokenHash = hashSecret(token);
    const envKey = this.envKeys.matchHash(tokenHash);
    if (envKey !== null) return envPrincipal(envKey.id);
    if (!token.startsWith(KEY_PREFIX)) throw unauthorized('Invalid proxy key. Check the key your ProxyGPT admin gave you.');
    const key = await this.store.findKeyByHash(tokenHash);
    if (key === null) throw unauthorized('Invalid proxy key. Check the key your ProxyGPT admin gave you.');
    this.assertUsable(key);
    return storedPrincipal(key);
  }

  private assertUsable(key: StoredKey): void {
    const status = keyStatus(key, this.clock());
    if (status === 'disabled') throw unauthorized('This proxy key has been disabled by the admin.');
    if (status === 'expired') throw unauthorized('This proxy key has expired.');
  }
}
