/**
 * Near-miss variants of a secret, for the tests that check a credential is compared whole: one
 * character changed at the start, in the middle and at the end, one added or missing, a prefix,
 * trailing garbage, and case changes (of one letter, and of all). Every variant differs from the
 * secret; most keep its length and its last characters, so a comparison that looks only at the
 * length or the tail lets them through.
 */

/** A character that is not `c` (and not whitespace, so the variant stays one Bearer token). */
const other = (c: string) => (c === 'x' ? 'y' : 'x');

function replaceAt(secret: string, i: number): string {
  return secret.slice(0, i) + other(secret[i]!) + secret.slice(i + 1);
}

/** Flips the case of the first letter of `secret` (which must have one). */
function flipFirstLetter(secret: string): string {
  const i = secret.search(/[a-z]/i);
  if (i < 0) throw new Error(`no letter in ${secret}`);
  const c = secret[i]!;
  const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  return secret.slice(0, i) + flipped + secret.slice(i + 1);
}

export interface NearMiss {
  what: string;
  value: string;
}

export function nearMisses(secret: string): NearMiss[] {
  const mid = Math.floor(secret.length / 2);
  const list: NearMiss[] = [
    { what: 'first character changed', value: replaceAt(secret, 0) },
    { what: 'middle character changed', value: replaceAt(secret, mid) },
    { what: 'last character changed', value: replaceAt(secret, secret.length - 1) },
    { what: 'one character appended', value: `${secret}x` },
    { what: 'one character prepended', value: `x${secret}` },
    { what: 'last character missing', value: secret.slice(0, -1) },
    { what: 'first character missing', value: secret.slice(1) },
    { what: 'middle character missing', value: secret.slice(0, mid) + secret.slice(mid + 1) },
    { what: 'a prefix (first half)', value: secret.slice(0, mid) },
    { what: 'trailing garbage', value: `${secret}-garbage` },
    { what: 'one letter in the other case', value: flipFirstLetter(secret) },
    { what: 'all upper case', value: secret.toUpperCase() },
    { what: 'all lower case', value: secret.toLowerCase() },
  ];
  // A case variant of a secret with no letters in that case would be the secret itself.
  return list.filter((m) => m.value !== secret);
}
