/**
 * The Store contract: where the gateway keeps what it records. SQLite now; Postgres implements the
 * same interface for several instances. Asynchronous everywhere, even where SQLite is not.
 */

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
}

export interface UsageSummary {
  requests: number;
  byStatus: Record<string, number>;
}

export interface Store {
  /** Writes a batch of usage records in one transaction. */
  recordUsage(records: readonly UsageRecord[]): Promise<void>;
  /** Counts recorded calls since `sinceMs` (inclusive), optionally for one principal. */
  usageSummary(sinceMs: number, principal?: string): Promise<UsageSummary>;
  /** Deletes usage records older than `beforeMs`; returns how many. */
  pruneUsage(beforeMs: number): Promise<number>;
  /** Resolves when the store answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
