/**
 * The dashboard's keys table: one row per key (stored keys and the environment's), with its
 * status, expiry, last use and each of its limits as the limiter sees it now (limit, used,
 * remaining, reset; peeked, never reserved), and the gateway's own limits that every key shares.
 * A key holder gets only the row of their own key, without the admin's notes.
 */
import { envPrincipal, keyStatus, storedPrincipal, type Principal } from '../auth/authenticator.js';
import type { RuleState, Store, StoredKey } from '../contract.js';
import type { CallLimits } from '../limits/call-limits.js';

export interface LimitView {
  /** `requests_per_hour`, `usd_per_month`, … for a key's own; `hourly`, `daily`, `concurrent` for the gateway's. */
  name: string;
  unit: 'requests' | 'tokens' | 'usd';
  limit: number;
  used: number;
  remaining: number;
  /** Seconds until room grows again (0 when nothing is counted). */
  reset_seconds: number;
}

export interface KeyRow {
  id: string;
  name: string;
  /** The admin's notes (admin view only). */
  notes?: string;
  /** The first characters of a stored key's secret; null for an environment key. */
  prefix: string | null;
  source: 'stored' | 'env';
  status: 'active' | 'disabled' | 'expired';
  disabled: boolean;
  created_at: string | null;
  expires_at: string | null;
  last_used: string | null;
  limits: LimitView[];
}

export interface KeysView {
  object: 'list';
  data: KeyRow[];
  /** The gateway's limits (PROXYGPT_HOURLY_RATE_LIMIT, …): one count shared by every key. */
  gateway_limits: LimitView[];
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function limitView(state: RuleState): LimitView {
  const scale = state.unit === 'usd' ? 1e6 : 1;
  return {
    name: state.name.replace(/^key_/, ''),
    unit: state.unit,
    limit: state.limit / scale,
    used: state.used / scale,
    remaining: state.remaining / scale,
    reset_seconds: Math.ceil(state.resetMs / 1000),
  };
}


export interface KeyTableOptions {
  store: Pick<Store, 'listKeys' | 'getKey' | 'lastUsed'>;
  limits: Pick<CallLimits, 'status'>;
  /** The environment keys' ids (`env-key-1`, …), in order. */
  envKeyIds: readonly string[];
  clock: () => number;
}

export class KeyTable {
  constructor(private readonly options: KeyTableOptions) {}

  /** Every key (admin view): stored keys by creation, then the environment's. */
  async all(): Promise<KeysView> {
    const { store, envKeyIds } = this.options;
    const [keys, lastUsed] = await Promise.all([store.listKeys(), store.lastUsed()]);
    const rows = await Promise.all([
      ...keys.map((key) => this.storedRow(key, lastUsed[key.id] ?? null, true)),
      ...envKeyIds.map((id) => this.envRow(id, lastUsed[id] ?? null, true)),
    ]);
    return { object: 'list', data: rows, gateway_limits: await this.gatewayLimits() };
  }

  /** The calling key's own row only (key-holder view). */
  async own(principal: Principal): Promise<KeysView> {
    const lastUsed = (await this.options.store.lastUsed())[principal.id] ?? null;
    const key = principal.source === 'stored' ? await this.options.store.getKey(principal.id) : null;
    const row = key !== null && key.id === principal.id ? await this.storedRow(key, lastUsed, false) : await this.envRow(principal.id, lastUsed, false);
    return { object: 'list', data: [row], gateway_limits: await this.gatewayLimits() };
  }

  /** One stored key's row (after a change from the page). */
  async row(key: StoredKey): Promise<KeyRow> {
    return this.storedRow(key, (await this.options.store.lastUsed())[key.id] ?? null, true);
  }

  private async gatewayLimits(): Promise<LimitView[]> {
    return (await this.options.limits.status(envPrincipal('gateway'))).global.map(limitView);
  }

  private async storedRow(key: StoredKey, lastUsed: number | null, withNotes: boolean): Promise<KeyRow> {
    const now = this.options.clock();
    const { key: states } = await this.options.limits.status(storedPrincipal(key));
    return {
      id: key.id,
      name: key.name,
      ...(withNotes ? { notes: key.notes } : {}),
      prefix: key.prefix,
      source: 'stored',
      status: keyStatus(key, now),
      disabled: key.disabled,
      created_at: iso(key.createdAt),
      expires_at: iso(key.expiresAt),
      last_used: iso(lastUsed),
      limits: states.map(limitView),
    };
  }

  private async envRow(id: string, lastUsed: number | null, withNotes: boolean): Promise<KeyRow> {
    return { id, name: id, ...(withNotes ? { notes: '' } : {}), prefix: null, source: 'env', status: 'active', disabled: false, created_at: null, expires_at: null, last_used: iso(lastUsed), limits: [] };
  }
}
