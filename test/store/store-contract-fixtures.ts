/**
 * What the Store contract cases share: the shape of a case, and builders for a key and a usage
 * record with plain defaults that each case overrides where it matters.
 */
import type { NewKey, Store, UsageRecord } from '../../src/contract.js';

/** What a case may ask of its backend beyond the fresh store; every store handed out is closed by the runner. */
export interface StoreBackend {
  /** A second store on the same database, as another gateway instance (process) would open it. */
  openSibling(): Promise<Store>;
  /**
   * A store on a new database that the release before rollups created and wrote `records` into
   * (as that release wrote them), now opened and migrated by this release.
   */
  openFromBeforeRollups(records: readonly UsageRecord[]): Promise<Store>;
}

export interface StoreCase {
  name: string;
  /** Runs on a fresh, empty store. */
  run(store: Store, backend: StoreBackend): Promise<void>;
}

export function newKey(overrides: Partial<NewKey> & Pick<NewKey, 'id' | 'name'>): NewKey {
  return {
    notes: '',
    hash: `hash-of-${overrides.id}`,
    prefix: 'pgpt-Test',
    expiresAt: null,
    policy: {},
    now: 1_700_000_000_000,
    ...overrides,
  };
}

export function usageRecord(overrides: Partial<UsageRecord> & Pick<UsageRecord, 'ts' | 'principal'>): UsageRecord {
  return {
    requestId: `req-${overrides.principal}-${overrides.ts}`,
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    status: 200,
    durationMs: 12,
    stream: false,
    promptTokens: 0,
    completionTokens: 0,
    costMicroUsd: 0,
    estimated: false,
    upstream: null,
    ...overrides,
  };
}

/** Far beyond any timestamp a case uses (the last valid Date). */
export const FOREVER = 8_640_000_000_000_000;
