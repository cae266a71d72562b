/**
 * A stored key's own access rules (src/policy/key-access.ts): CIDR parsing, the IP allowlist for
 * IPv4, IPv6 and IPv4-mapped IPv6 addresses (an IPv4 client seen through a dual-stack socket), the
 * endpoint and model lists, and the compiled-policy cache following the key's version. Plus one
 * HTTP check on a dual-stack listener.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { KeyAccess, KeyAccessCache, parseCidr } from '../../src/policy/key-access.js';
import type { Principal } from '../../src/auth/authenticator.js';
import { ApiError } from '../../src/errors.js';
import { loadConfig } from '../../src/config.js';
import { createApp } from '../../src/app.js';
import { startMockOpenAI } from '../fixtures/mock-openai.js';
import { tempDir, UPSTREAM_KEY } from '../helpers.js';
import { ADMIN_KEY, call, chatRequest, createKey } from './helpers.js';

function refusal(fn: () => void): { status: number; code: string | null } | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { status: err.statusCode, code: err.code };
  }
}

describe('parseCidr', () => {
  it('accepts addresses and ranges of both families', () => {
    expect(parseCidr('127.0.0.1')).toEqual({ address: '127.0.0.1', prefix: 32, family: 'ipv4' });
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr(' 0.0.0.0/0 ')).toEqual({ address: '0.0.0.0', prefix: 0, family: 'ipv4' });
    expect(parseCidr('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(parseCidr('2001:db8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseCidr('::ffff:127.0.0.1')).toMatchObject({ family: 'ipv6', prefix: 128 });
  });

  it('rejects what is not an address or a valid prefix', () => {
    for (const bad of ['', 'localhost', '256.0.0.1', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0.0/ 8', '10.0.0.0/8x', '::1/129', '1.2.3', '10.0.0.0/']) {
      expect(parseCidr(bad), bad).toBeNull();
    }
  });
});

describe('KeyAccess', () => {
  it('IPv4 ranges, single addresses, and IPv4 clients seen through an IPv6 socket', () => {
    const access = new KeyAccess({ ips: ['10.0.0.0/8', '192.168.1.7'] });
    for (const ip of ['10.0.0.1', '10.255.255.255', '192.168.1.7', '::ffff:10.1.2.3', '::ffff:192.168.1.7']) expect(refusal(() => access.checkIp(ip)), ip).toBeNull();
    for (const ip of ['11.0.0.1', '192.168.1.8', '127.0.0.1', '::ffff:127.0.0.1', '::1', '::ffff:11.0.0.1']) {
      expect(refusal(() => access.checkIp(ip)), ip).toEqual({ status: 403, code: 'ip_not_allowed' });
    }
  });

  it('IPv6 ranges and forms', () => {
    const access = new KeyAccess({ ips: ['::1', '2001:db8::/32'] });
    for (const ip of ['::1', '0:0:0:0:0:0:0:1', '2001:db8::1', '2001:db8:ffff::1']) expect(refusal(() => access.checkIp(ip)), ip).toBeNull();
    for (const ip of ['::2', '2001:db9::1', '127.0.0.1', 'fe80::1']) expect(refusal(() => access.checkIp(ip)), ip).not.toBeNull();
    // An IPv4-mapped entry admits the IPv4 client, whichever way its address is written.
    const mapped = new KeyAccess({ ips: ['::ffff:127.0.0.1'] });
    expect(refusal(() => mapped.checkIp('127.0.0.1'))).toBeNull();
    expect(refusal(() => mapped.checkIp('::ffff:127.0.0.1'))).toBeNull();
    expect(refusal(() => mapped.checkIp('127.0.0.2'))).not.toBeNull();
  });

  it('no list or an empty list: any address', () => {
    for (const policy of [{}, { ips: null }, { ips: [] }]) {
      const access = new KeyAccess(policy);
      for (const ip of ['1.2.3.4', '::1', '::ffff:8.8.8.8']) expect(refusal(() => access.checkIp(ip))).toBeNull();
    }
  });

  it('endpoints (exact and prefix) and models (globs)', () => {
    const access = new KeyAccess({ endpoints: ['POST /v1/chat/completions', 'GET /v1/models/*'], models: ['gpt-4o*', 'o3-mini'] });
    expect(refusal(() => access.checkEndpoint('POST', '/v1/chat/completions'))).toBeNull();
    expect(refusal(() => access.checkEndpoint('GET', '/v1/models/gpt-4o'))).toBeNull();
    expect(refusal(() => access.checkEndpoint('GET', '/v1/chat/completions'))).toEqual({ status: 403, code: 'endpoint_not_allowed' });
    expect(refusal(() => access.checkEndpoint('POST', '/v1/embeddings'))).toEqual({ status: 403, code: 'endpoint_not_allowed' });
    for (const model of ['gpt-4o', 'gpt-4o-mini-2024-07-18', 'o3-mini', undefined]) expect(refusal(() => access.checkModel(model)), String(model)).toBeNull();
    for (const model of ['gpt-4', 'o3-mini-high', 'GPT-4O', 42]) expect(refusal(() => access.checkModel(model)), String(model)).toEqual({ status: 403, code: 'model_not_allowed' });
  });

  it('the cache recompiles when the key’s version changes, and gives environment keys nothing', () => {
    const cache = new KeyAccessCache();
    const principal = (version: number, ips: string[]): Principal => ({ id: 'key_x', name: 'x', source: 'stored', policy: { ips }, version, expiresAt: null });
    expect(refusal(() => cache.get(principal(1, ['10.0.0.0/8']))!.checkIp('127.0.0.1'))).not.toBeNull();
    expect(refusal(() => cache.get(principal(2, ['127.0.0.1']))!.checkIp('127.0.0.1'))).toBeNull();
    expect(cache.get({ id: 'env-key-1', name: 'env-key-1', source: 'env', policy: null, version: 0, expiresAt: null })).toBeNull();
  });
});

describe('a dual-stack listener (::)', () => {
  let closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers) await close();
    closers = [];
  });

  it('an IPv4 client arrives as ::ffff:127.0.0.1 and matches 127.0.0.1/32 and ::ffff:127.0.0.1, not ::1', async () => {
    const mock = await startMockOpenAI();
    const dir = tempDir();
    const { config } = loadConfig({
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: mock.url,
      PROXYGPT_ADMIN_KEY: ADMIN_KEY,
      PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'),
      LOG_LEVEL: 'warn',
    });
    const app = await createApp(config);
    closers.push(async () => {
      await app.close();
      await mock.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await app.server.listen({ port: 0, host: '::' });
    const gw = { url: `http://127.0.0.1:${(app.server.server.address() as AddressInfo).port}` };

    const cases: [string[], number][] = [
      [['127.0.0.1/32'], 200],
      [['::ffff:127.0.0.1'], 200],
      [['::ffff:127.0.0.0/104'], 200],
      [['::1'], 403],
      [['10.0.0.0/8'], 403],
    ];
    for (const [i, [ips, status]] of cases.entries()) {
      const k = await createKey(gw, { name: `dual-${i}`, ips });
      const r = await call(gw, k.key, { body: chatRequest() });
      expect(r.status, `${ips.join(',')}: ${r.text}`).toBe(status);
    }
  });
});
