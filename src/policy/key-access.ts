/**
 * A stored key's own access rules, compiled once per key version: its endpoint and model
 * allowlists (checked after the gateway's) and its client IP allowlist (addresses and CIDR
 * ranges, IPv4 and IPv6, via node's BlockList).
 */
import { BlockList, isIP } from 'node:net';
import { parseEndpoints } from '../config.js';
import { ipNotAllowed } from '../errors.js';
import type { Principal } from '../auth/authenticator.js';
import type { KeyPolicy } from '../contract.js';
import { Policy } from './policy.js';

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address; null when invalid. */
export function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const parts = entry.trim().split('/');
  if (parts.length > 2) return null;
  const [address, prefixText] = parts;
  const version = isIP(address ?? '');
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) return null;
  return { address: address!, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** `::ffff:1.2.3.4` (IPv4 seen through an IPv6 socket) → `1.2.3.4`. */
function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export class KeyAccess {
  private readonly policy: Policy;
  private readonly ips: BlockList | null;

  constructor(policy: KeyPolicy) {
    this.policy = new Policy(
      policy.endpoints ? parseEndpoints(policy.endpoints.join(','), 'endpoints') : null,
      policy.models && policy.models.length > 0 ? policy.models : null,
      'this key',
    );
    if (policy.ips && policy.ips.length > 0) {
      this.ips = new BlockList();
      for (const entry of policy.ips) {
        const cidr = parseCidr(entry);
        if (cidr !== null) this.ips.addSubnet(cidr.address, cidr.prefix, cidr.family);
      }
    } else {
      this.ips = null;
    }
  }

  checkIp(ip: string): void {
    if (this.ips === null) return;
    const address = normaliseIp(ip);
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (!this.ips.check(address, family)) throw ipNotAllowed(`Requests from ${address} are not allowed for this key.`);
  }

  checkEndpoint(method: string, path: string): void {
    this.policy.checkEndpoint(method, path);
  }

  checkModel(model: unknown): void {
    this.policy.checkModel(model);
  }

  modelAllowed(model: string): boolean {
    return this.policy.modelAllowed(model);
  }
}

/** Compiled KeyAccess per stored key, rebuilt when the key changes (its version moves). */
export class KeyAccessCache {
  private readonly cache = new Map<string, { version: number; access: KeyAccess }>();

  get(principal: Principal): KeyAccess | null {
    if (principal.policy === null) return null;
    const hit = this.cache.get(principal.id);
    if (hit !== undefined && hit.version === principal.version) return hit.access;
    const access = new KeyAccess(principal.policy);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(principal.id, { version: principal.version, access });
    return access;
  }
}
