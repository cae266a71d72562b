/**
 * Unit tests of the credential primitives in src/auth/keys.ts: how a Bearer header is read, that
 * constantTimeEqual compares the whole string (a near miss — one character changed anywhere, one
 * more or less, a prefix, another case — is never equal), and that KeyRing.match names the key
 * that matched (`env-key-N` by position), not merely some key, and nothing for a near miss.
 */
import { describe, expect, it } from 'vitest';
import { bearerToken, constantTimeEqual, KeyRing } from '../../src/auth/keys.js';
import { nearMisses } from './near-miss.js';

describe('bearerToken', () => {
  it.each([
    ['Bearer x', 'x'],
    ['Bearer pgpt-AbC_12-xyz', 'pgpt-AbC_12-xyz'],
    ['bearer x', 'x'],
    ['BEARER x', 'x'],
    ['BeArEr x', 'x'],
    ['Bearer    x', 'x'],
    ['   Bearer x   ', 'x'],
    ['Bearer\tx', 'x'],
  ])('%j → %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });

  it.each([
    ['Basic x'],
    ['Basic YWRtaW46c2VjcmV0'],
    ['Token x'],
    ['Bearer'],
    ['Bearer '],
    ['Bearer    '],
    ['Bearerx'],
    ['Bearer a b'],
    ['Bearer a\tb'],
    ['x Bearer y'],
    ['x'],
    [''],
  ])('%j → null', (header) => {
    expect(bearerToken(header)).toBeNull();
  });

  it('uses the first value of a repeated header', () => {
    expect(bearerToken(['Bearer first', 'Bearer second'])).toBe('first');
    expect(bearerToken(['Basic first', 'Bearer second'])).toBeNull();
    expect(bearerToken([])).toBeNull();
  });

  it('is null without a header', () => {
    expect(bearerToken(undefined)).toBeNull();
  });
});

describe('constantTimeEqual', () => {
  const secret = 'Admin-Key-For-Unit-Tests-0123456789abcdef';

  it('is true for the same string (and for two empty strings)', () => {
    expect(constantTimeEqual(secret, `${secret}`)).toBe(true);
    expect(constantTimeEqual(secret.slice(0), secret)).toBe(true);
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual('ключ-🔑', 'ключ-🔑')).toBe(true);
  });

  it.each(nearMisses(secret).map((m) => [m.what, m.value]))('is false for a near miss: %s', (_what, value) => {
    expect(constantTimeEqual(value, secret)).toBe(false);
    expect(constantTimeEqual(secret, value)).toBe(false);
  });

  it('is false against the empty string, and for look-alike characters', () => {
    expect(constantTimeEqual('', secret)).toBe(false);
    expect(constantTimeEqual(secret, '')).toBe(false);
    // Cyrillic "а" instead of Latin "a": the same glyph, another string.
    expect(constantTimeEqual(secret.replace('a', 'а'), secret)).toBe(false);
  });
});

describe('KeyRing.match', () => {
  // Same length and the same last characters, so only a whole comparison tells them apart.
  const keys = ['first-proxy-key-AAAA-common-tail-0123', 'other-proxy-key-BBBB-common-tail-0123', 'third-proxy-key-CCCC-common-tail-0123', 'short-key'];

  it('gives each key its own id, env-key-N by position', () => {
    const ring = new KeyRing(keys);
    expect(keys.map((k) => ring.match(k))).toEqual([{ id: 'env-key-1' }, { id: 'env-key-2' }, { id: 'env-key-3' }, { id: 'env-key-4' }]);
    // In another order, the ids follow the order.
    const reversed = new KeyRing([...keys].reverse());
    expect(keys.map((k) => reversed.match(k)?.id)).toEqual(['env-key-4', 'env-key-3', 'env-key-2', 'env-key-1']);
  });

  it('tells apart a key from one that contains it', () => {
    const ring = new KeyRing(['abc-proxy-key-0001', 'abc-proxy-key-0001-longer', 'x-abc-proxy-key-0001']);
    expect(ring.match('abc-proxy-key-0001')).toEqual({ id: 'env-key-1' });
    expect(ring.match('abc-proxy-key-0001-longer')).toEqual({ id: 'env-key-2' });
    expect(ring.match('x-abc-proxy-key-0001')).toEqual({ id: 'env-key-3' });
    expect(ring.match('abc-proxy-key-0001-')).toBeNull();
  });

  it('is null for a near miss of any of its keys', () => {
    const ring = new KeyRing(keys);
    for (const key of keys) {
      for (const miss of nearMisses(key)) {
        if (keys.includes(miss.value)) continue; // a variant that happens to be another key
        expect(ring.match(miss.value), `${miss.what} of ${key}: ${miss.value}`).toBeNull();
      }
    }
  });

  it('is null for anything when it holds no key, and for the empty token', () => {
    expect(new KeyRing([]).match('first-proxy-key-AAAA-common-tail-0123')).toBeNull();
    expect(new KeyRing([]).match('')).toBeNull();
    expect(new KeyRing(keys).match('')).toBeNull();
  });
});
