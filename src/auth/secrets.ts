/**
 * Stored proxy key secrets: high-entropy random keys with a recognisable prefix (`pgpt-`), kept
 * only as a SHA-256 hash. A lookup by hash leaks nothing useful through timing: the attacker does
 * not control the hash of a guess.
 */
import { hash, randomBytes } from 'node:crypto';

export const KEY_PREFIX = 'pgpt-';

/** A new secret: `pgpt-` + 32 base64url characters (192 random bits). */
export function generateSecret(): string {
  return KEY_PREFIX + randomBytes(24).toString('base64url');
}

/**
 * SHA-256 of a secret, hex: the hash a stored key is kept and found by, and what the environment
 * keys are matched by. Hex straight from `hash()` costs half of a Buffer digest (0.8 vs 2.0 µs).
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** What may be shown of a secret: its first characters, enough to tell keys apart. */
export function displayPrefix(secret: string): string {
  return `${secret.slice(0, KEY_PREFIX.length + 4)}…`;
}

/** A short public id for a key (`key_` + 12 base32 characters). */
export function generateKeyId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(12);
  let id = 'key_';
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}
