/**
 * SQLite store: usage records in the embedded database file (see sqlite-db.ts for how it is opened).
 */
import type { SqliteDatabase } from './sqlite-db.js';
import type { Store, UsageRecord, UsageSummary } from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_events (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  principal TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  model TEXT,
  status INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  stream INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_events_by_time ON usage_events (ts);
CREATE INDEX IF NOT EXISTS usage_events_by_principal ON usage_events (principal, ts);
`;

export function migrateSqliteStore(db: SqliteDatabase): void {
  db.exec(SCHEMA);
}

export class SqliteStore implements Store {
  private readonly insert;
  private readonly insertMany;

  constructor(private readonly db: SqliteDatabase) {
    migrateSqliteStore(db);
    this.insert = db.prepare(
      `INSERT INTO usage_events (ts, request_id, principal, method, path, model, status, duration_ms, stream)
       VALUES (@ts, @requestId, @principal, @method, @path, @model, @status, @durationMs, @stream)`,
    );
    this.insertMany = db.transaction((records: readonly UsageRecord[]) => {
      for (const r of records) this.insert.run({ ...r, stream: r.stream ? 1 : 0 });
    });
  }

  async recordUsage(records: readonly UsageRecord[]): Promise<void> {
    if (records.length > 0) this.insertMany.immediate(records);
  }

  async usageSummary(sinceMs: number, principal?: string): Promise<UsageSummary> {
    const rows = this.db
      .prepare<unknown[], { status: number; n: number }>(
        `SELECT status, count(*) AS n FROM usage_events WHERE ts >= ? ${principal ? 'AND principal = ?' : ''} GROUP BY status`,
      )
      .all(...(principal ? [sinceMs, principal] : [sinceMs]));
    const byStatus: Record<string, number> = {};
    let requests = 0;
    for (const row of rows) {
      byStatus[String(row.status)] = row.n;
      requests += row.n;
    }
    return { requests, byStatus };
  }

  async pruneUsage(beforeMs: number): Promise<number> {
    return this.db.prepare('DELETE FROM usage_events WHERE ts < ?').run(beforeMs).changes;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
