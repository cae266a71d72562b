/**
 * Proxy key authentication: parses `Authorization: Bearer <key>` and matches it against the
 * configured keys in constant time (SHA-256 digests compared with timingSafeEqual, every key
 * checked, no early exit), so the response time reveals nothing about how close a guess was.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { unauthorized } from '../errors.js';

/** Who made the request. `id` is safe to log and store; it never contains the key. */
export interface Principal {
  id: string;
  source: 'env';
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Extracts the token of a Bearer authorization header, or null when absent or malformed. */
export function bearerToken(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string') return null;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1]! : null;
}

export class KeyRing {
  private readonly entries: { digest: Buffer; principal: Principal }[];

  constructor(keys: readonly string[]) {
    this.entries = keys.map((key, i) => ({ digest: digest(key), principal: { id: `env-key-${i + 1}`, source: 'env' } }));
  }

  /** The principal for this key, or null. Runs in time independent of which key (if any) matched. */
  match(token: string): Principal | null {
    const candidate = digest(token);
    let found: Principal | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(candidate, entry.digest)) found = entry.principal;
    }
    return found;
  }

  /** Authenticates a request's Authorization header or throws a 401 ApiError. */
  authenticate(header: string | string[] | undefined): Principal {
    const token = bearerToken(header);
    if (token === null) {
      throw unauthorized('Missing proxy key. Send it as "Authorization: Bearer <your ProxyGPT key>".');
    }
    const principal = this.match(token);
    if (principal === null) throw unauthorized('Invalid proxy key. Check the key your ProxyGPT admin gave you.');
    return principal;
  }
}
