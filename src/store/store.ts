/**
 * The Store contract: what the gateway keeps. Stored proxy keys (only their SHA-256 hash), usage
 * records, and the admin's price overrides. SQLite now; Postgres implements the same interface for
 * several instances. Asynchronous everywhere, even where SQLite is not.
 */
import type { ModelPrice } from '../metering/prices.js';

/** A stored key's own limits and allowlists; absent or null fields mean "no per-key restriction". */
export interface KeyPolicy {
  requestsPerHour?: number | null;
  requestsPerDay?: number | null;
  tokensPerHour?: number | null;
  tokensPerDay?: number | null;
  /** US dollars per rolling day. */
  usdPerDay?: number | null;
  /** US dollars per calendar month (UTC). */
  usdPerMonth?: number | null;
  /** Calls in flight at once (streams count while open). */
  maxConcurrent?: number | null;
  /** `METHOD /v1/path` entries (a trailing `/*` allows a prefix); within the gateway's own list. */
  endpoints?: string[] | null;
  /** Model names or globs; within the gateway's own list. */
  models?: string[] | null;
  /** Client IPs or CIDR ranges (IPv4 or IPv6). */
  ips?: string[] | null;
}

export interface StoredKey {
  id: string;
  name: string;
  notes: string;
  /** The first characters of the secret, enough to recognise it (`pgpt-AbCd…`). */
  prefix: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  disabled: boolean;
  policy: KeyPolicy;
}

export interface NewKey {
  id: string;
  name: string;
  notes: string;
  hash: string;
  prefix: string;
  expiresAt: number | null;
  policy: KeyPolicy;
  now: number;
}

export interface KeyPatch {
  name?: string;
  notes?: string;
  expiresAt?: number | null;
  disabled?: boolean;
  policy?: KeyPolicy;
}

/** One proxied call, as recorded after it finished. Never holds a key or a message body. */
export interface UsageRecord {
  ts: number;
  requestId: string;
  principal: string;
  method: string;
  path: string;
  model: string | null;
  status: number;
  durationMs: number;
  stream: boolean;
  promptTokens: number;
  completionTokens: number;
  /** Cost in micro-dollars (1e-6 USD). */
  costMicroUsd: number;
  /** true when the tokens were estimated (no usage from the upstream). */
  estimated: boolean;
}

export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  usd: number;
  byStatus: Record<string, number>;
}

export interface UsageQuery {
  sinceMs: number;
  untilMs: number;
  principal?: string;
}

export interface Store {
  createKey(key: NewKey): Promise<StoredKey>;
  /** The key whose secret hashes to `hash`, or null. */
  findKeyByHash(hash: string): Promise<StoredKey | null>;
  /** By id or by name. */
  getKey(idOrName: string): Promise<StoredKey | null>;
  listKeys(): Promise<StoredKey[]>;
  updateKey(id: string, patch: KeyPatch, now: number): Promise<StoredKey | null>;
  /** Replaces the secret (rotation). */
  setKeySecret(id: string, hash: string, prefix: string, now: number): Promise<StoredKey | null>;
  deleteKey(id: string): Promise<boolean>;

  /** Writes a batch of usage records in one transaction. */
  recordUsage(records: readonly UsageRecord[]): Promise<void>;
  /** Totals over [sinceMs, untilMs), overall and per principal. */
  usage(query: UsageQuery): Promise<{ total: UsageTotals; byPrincipal: Record<string, UsageTotals> }>;
  /** Deletes usage records older than `beforeMs`; returns how many. */
  pruneUsage(beforeMs: number): Promise<number>;

  priceOverrides(): Promise<Record<string, ModelPrice>>;
  /** Sets (or with null removes) the admin's price for a model. */
  setPriceOverride(model: string, price: ModelPrice | null): Promise<void>;

  /** Resolves when the store answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
