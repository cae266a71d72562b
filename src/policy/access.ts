/**
 * Who may use what: the gateway's own endpoint and model allowlists, then a stored key's own
 * (its endpoints, models and client IPs, compiled once per key version). A request must pass the
 * gateway's rules and its key's; each check throws the 403 that names what was refused.
 */
import type { Principal } from '../auth/authenticator.js';
import type { KeyAccessCache } from './key-access.js';
import type { Policy } from './policy.js';

export class Access {
  constructor(
    private readonly gateway: Policy,
    private readonly keys: KeyAccessCache,
  ) {}

  /** May this caller use this endpoint from this address. */
  checkEndpoint(principal: Principal, method: string, path: string, ip: string): void {
    this.gateway.checkEndpoint(method, path);
    const key = this.keys.get(principal);
    if (key !== null) {
      key.checkIp(ip);
      key.checkEndpoint(method, path);
    }
  }

  /** May this caller call from this address (for routes that are no endpoint of the upstream). */
  checkIp(principal: Principal, ip: string): void {
    this.keys.get(principal)?.checkIp(ip);
  }

  /** Whether this caller may use `model` (the gateway's list and its key's), without throwing. */
  allowsModel(principal: Principal, model: string): boolean {
    return this.gateway.modelAllowed(model) && (this.keys.get(principal)?.modelAllowed(model) ?? true);
  }

  /** May this caller use this model (null: the request names none). */
  checkModel(principal: Principal, model: string | null): void {
    this.gateway.checkModel(model ?? undefined);
    this.keys.get(principal)?.checkModel(model ?? undefined);
  }
}
