/**
 * Environment proxy keys (PROXYGPT_API_KEY / PROXYGPT_API_KEYS): matched in constant time
 * (SHA-256 digests compared with timingSafeEqual, every key checked, no early exit), so the
 * response time reveals nothing about how close a guess was. Also reads Bearer headers.
 */
import { timingSafeEqual } from 'node:crypto';
import { hashSecret } from './secrets.js';

/** Extracts the token of a Bearer authorization header, or null when absent or malformed. */
export function bearerToken(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string') return null;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1]! : null;
}

/** True when `a` equals `b`, in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(hashSecret(a), 'hex'), Buffer.from(hashSecret(b), 'hex'));
}

/** The id of the environment's `index`-th proxy key (0-based): `env-key-1`, `env-key-2`, … */
export const envKeyId = (index: number): string => `env-key-${index + 1}`;

export class KeyRing {
  private readonly entries: { digest: Buffer; id: string }[];

  constructor(keys: readonly string[]) {
    this.entries = keys.map((key, i) => ({ digest: Buffer.from(hashSecret(key), 'hex'), id: envKeyId(i) }));
  }

  /** The id (`env-key-N`) of this key, or null. Runs in time independent of which key matched. */
  match(token: string): { id: string } | null {
    return this.matchHash(hashSecret(token));
  }

  /** `match` for a key whose hash (hashSecret) the caller has already. */
  matchHash(candidateHash: string): { id: string } | null {
    const candidate = Buffer.from(candidateHash, 'hex');
    let found: { id: string } | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(candidate, entry.digest)) found = { id: entry.id };
    }
    return found;
  }
}
