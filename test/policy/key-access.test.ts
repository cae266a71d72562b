/**
 * A stored key's own access rules on their own (src/policy/key-access.ts): which IP allowlist
 * entries parse (addresses and CIDR ranges, IPv4 and IPv6, with strict prefix syntax), how a
 * client address is matched (IPv4 seen through an IPv6 socket as `::ffff:a.b.c.d` is matched as
 * IPv4, another IPv6 address ending in an IPv4 one is not), that an empty list means "no
 * restriction" for models and IPs, that a stored endpoint list that does not parse is an error
 * naming the field, and that the compiled rules are cached per key version.
 */
import { describe, expect, it } from 'vitest';
import { KeyAccess, KeyAccessCache, parseCidr } from '../../src/policy/key-access.js';
import { ApiError } from '../../src/errors.js';
import type { Principal } from '../../src/auth/authenticator.js';

/** What `fn` throws (status, code, message), or null when it does not throw. */
function refusal(fn: () => void): { status: number; code: string | null; message: string } | null {
  try {
    fn();
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    return { status: e.statusCode, code: e.code, message: e.message };
  }
}

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['  192.168.1.7  ', { address: '192.168.1.7', prefix: 32, family: 'ipv4' }],
    ['1.2.3.4/0', { address: '1.2.3.4', prefix: 0, family: 'ipv4' }],
    ['1.2.3.4/32', { address: '1.2.3.4', prefix: 32, family: 'ipv4' }],
    ['2001:db8::/32', { address: '2001:db8::', prefix: 32, family: 'ipv6' }],
    ['::1', { address: '::1', prefix: 128, family: 'ipv6' }],
    ['::/128', { address: '::', prefix: 128, family: 'ipv6' }],
  ])('%j parses', (entry, parsed) => {
    expect(parseCidr(entry)).toEqual(parsed);
  });

  it.each(['', 'localhost', '1.2.3', '1.2.3.4/33', '1.2.3.4/-1', '1.2.3.4/8.5', '1.2.3.4/8x', '1.2.3.4/x8', '1.2.3.4/', '1.2.3.4/ 8', '1.2.3.4/+8', '1.2.3.4/0x8', '1.2.3.4/1e1', '1.2.3.4/8/8', '2001:db8::/129', '10.0.0.0 /8'])(
    '%j is refused',
    (entry) => {
      expect(parseCidr(entry)).toBeNull();
    },
  );
});

describe('KeyAccess', () => {
  it('admits only the listed addresses and ranges, IPv4 also through an IPv6 socket', () => {
    const access = new KeyAccess({ ips: ['10.1.0.0/16', '192.0.2.7', '2001:db8::/32'] });
    for (const ip of ['10.1.2.3', '::ffff:10.1.255.255', '192.0.2.7', '::ffff:192.0.2.7', '2001:db8::1', '2001:db8:ffff::9']) {
      expect(refusal(() => access.checkIp(ip)), ip).toBeNull();
    }
    expect(refusal(() => access.checkIp('10.2.0.1'))).toEqual({ status: 403, code: 'ip_not_allowed', message: 'Requests from 10.2.0.1 are not allowed for this key.' });
    // The IPv4 address is named (and matched) without its IPv6 wrapping.
    expect(refusal(() => access.checkIp('::ffff:192.0.2.8'))).toEqual({ status: 403, code: 'ip_not_allowed', message: 'Requests from 192.0.2.8 are not allowed for this key.' });
    expect(refusal(() => access.checkIp('2001:db9::1'))?.message).toBe('Requests from 2001:db9::1 are not allowed for this key.');
    // Only a real IPv4 address is unwrapped.
    expect(refusal(() => access.checkIp('::ffff:abcd'))?.message).toBe('Requests from ::ffff:abcd are not allowed for this key.');
  });

  it('unwraps only ::ffff:, not another IPv6 address that ends in an IPv4 one', () => {
    const access = new KeyAccess({ ips: ['192.0.2.7'] });
    expect(refusal(() => access.checkIp('::ffff:192.0.2.7'))).toBeNull();
    // Seven characters and an IPv4 address, like ::ffff:, but IPv6 addresses of their own.
    for (const ip of ['::abcd:192.0.2.7', '1:2:3::192.0.2.7']) {
      expect(refusal(() => access.checkIp(ip)), ip).toEqual({ status: 403, code: 'ip_not_allowed', message: `Requests from ${ip} are not allowed for this key.` });
    }
  });

  it('a stored endpoint list that does not parse is an error naming the field', () => {
    expect(() => new KeyAccess({ endpoints: ['GET /v2/models'] })).toThrowError(/^endpoints: entry "GET \/v2\/models" must look like "POST \/v1\/chat\/completions"/);
  });

  it('an IPv4-mapped entry does not admit other IPv6 addresses', () => {
    const access = new KeyAccess({ ips: ['::ffff:0:0/96'] });
    expect(refusal(() => access.checkIp('2001:db8::1'))?.code).toBe('ip_not_allowed');
  });

  it('ignores entries that do not parse, and refuses everything when none does', () => {
    const access = new KeyAccess({ ips: ['not-an-ip', '1.2.3.4/99'] });
    expect(refusal(() => access.checkIp('1.2.3.4'))?.code).toBe('ip_not_allowed');
  });

  it('an empty or missing list restricts nothing', () => {
    for (const policy of [{}, { ips: [] }, { models: [] }, { ips: [], models: [] }]) {
      const access = new KeyAccess(policy);
      expect(refusal(() => access.checkIp('203.0.113.9')), JSON.stringify(policy)).toBeNull();
      expect(refusal(() => access.checkModel('any-model')), JSON.stringify(policy)).toBeNull();
      expect(refusal(() => access.checkEndpoint('DELETE', '/v1/files/x')), JSON.stringify(policy)).toBeNull();
    }
  });

  it('checks its models and endpoints, naming the key', () => {
    const access = new KeyAccess({ models: ['gpt-4o-mini'], endpoints: ['POST /v1/chat/completions'] });
    expect(refusal(() => access.checkModel('gpt-4o-mini'))).toBeNull();
    expect(refusal(() => access.checkModel('gpt-4o'))).toEqual({ status: 403, code: 'model_not_allowed', message: 'The model "gpt-4o" is not enabled for this key.' });
    expect(refusal(() => access.checkEndpoint('POST', '/v1/chat/completions'))).toBeNull();
    expect(refusal(() => access.checkEndpoint('POST', '/v1/embeddings'))).toEqual({ status: 403, code: 'endpoint_not_allowed', message: 'POST /v1/embeddings is not enabled for this key.' });
  });
});

describe('KeyAccessCache', () => {
  const principal = (version: number, models: string[] | null): Principal => ({ id: 'key_a', name: 'a', source: 'stored', policy: models === null ? null : { models }, version, expiresAt: null });

  it('compiles once per key version, and not at all for environment keys', () => {
    const cache = new KeyAccessCache();
    expect(cache.get(principal(1, null))).toBeNull();
    const first = cache.get(principal(1, ['m1']))!;
    expect(cache.get(principal(1, ['m1']))).toBe(first);
    const second = cache.get(principal(2, ['m2']))!;
    expect(second).not.toBe(first);
    expect(refusal(() => second.checkModel('m2'))).toBeNull();
    expect(refusal(() => second.checkModel('m1'))?.code).toBe('model_not_allowed');
  });

  it('forgets everything past 10,000 keys (bounded memory), and compiles again on demand', () => {
    const cache = new KeyAccessCache();
    const of = (i: number): Principal => ({ ...principal(1, ['m']), id: `key_${i}` });
    const first = cache.get(of(0))!;
    for (let i = 1; i <= 10_000; i++) cache.get(of(i));
    expect(cache.get(of(0))).toBe(first); // 10,001 entries: still kept
    cache.get(of(10_001)); // one more: the cache starts over
    const again = cache.get(of(0))!;
    expect(again).not.toBe(first);
    expect(refusal(() => again.checkModel('m'))).toBeNull();
  });
});
