/**
 * The limiter alone, in this process: one limiter of each kind on a temp SQLite file (opened as
 * the gateway opens it: WAL, synchronous=NORMAL): the MemoryLimiter a one-worker gateway uses and
 * the SqliteLimiter workers share. The gateway's rules (hourly and daily on the global request
 * series), and N events already in both windows, bulk-inserted in one transaction with correct
 * cumulative totals. Each reserve is timed alone; after every batch the events the batch appended
 * are removed again (untimed; the memory limiter is closed first and a new one started after), so
 * the window holds N to N + batch events throughout.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { migrateSqliteLimiter, SqliteLimiter } from '../../src/limits/sqlite.js';
import { MemoryLimiter } from '../../src/limits/memory.js';
import { DAY_MS, GLOBAL_REQUESTS, HOUR_MS } from '../../src/limits/rules.js';
import type { Limiter, LimitRule, SeriesCost } from '../../src/limits/limiter.js';
import { summarise, type Summary } from './stats.js';

export type LimiterKind = 'memory' | 'sqlite';

export interface LimiterFigures {
  kind: LimiterKind;
  events: number;
  /** Microseconds per reserve. */
  reserveUs: Summary;
  reserves: number;
  setupSeconds: number;
}

const RULES: LimitRule[] = [
  { name: 'hourly', series: GLOBAL_REQUESTS, unit: 'requests', windowMs: HOUR_MS, limit: 1e12 },
  { name: 'daily', series: GLOBAL_REQUESTS, unit: 'requests', windowMs: DAY_MS, limit: 1e12 },
];
const COSTS: Record<string, SeriesCost> = { [GLOBAL_REQUESTS]: { amount: 1, hold: false } };

export async function limiterCost(kind: LimiterKind, dir: string, events: number, reserves: number, batch = 500, warmup = 200): Promise<LimiterFigures> {
  const path = join(dir, `limiter-${kind}-${events}.db`);
  const db = openSqlite(path, 0);
  try {
    migrateSqliteLimiter(db);
    const start = (): Limiter => (kind === 'memory' ? new MemoryLimiter(db) : new SqliteLimiter(db));
    const setupStart = performance.now();
    // All N events inside the last 50 minutes: in the hourly window and in the daily one.
    const now = Date.now();
    const span = 50 * 60_000;
    const insert = db.prepare('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)');
    let lastTs = now - span;
    db.transaction(() => {
      for (let i = 1; i <= events; i++) {
        lastTs = now - span + Math.floor((i * span) / events);
        insert.run(GLOBAL_REQUESTS, i, lastTs);
      }
      db.prepare('INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, 0)').run(GLOBAL_REQUESTS, events, lastTs);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    const setupSeconds = (performance.now() - setupStart) / 1000;

    const trim = db.prepare('DELETE FROM limit_events WHERE series = ? AND cum > ?');
    const resetSeries = db.prepare('UPDATE limit_series SET cum = ?, last_ts = ? WHERE series = ?');
    let limiter = start();
    const restore = async () => {
      await limiter.close();
      trim.run(GLOBAL_REQUESTS, events);
      resetSeries.run(events, lastTs, GLOBAL_REQUESTS);
      limiter = start();
    };

    for (let i = 0; i < warmup; i++) await limiter.reserve(RULES, COSTS);
    await restore();
    const us: number[] = [];
    while (us.length < reserves) {
      for (let i = 0; i < batch && us.length < reserves; i++) {
        const start = process.hrtime.bigint();
        const decision = await limiter.reserve(RULES, COSTS);
        us.push(Number(process.hrtime.bigint() - start) / 1e3);
        if (!decision.admitted) throw new Error('limiter refused a reserve in the bench');
      }
      await restore();
    }
    await limiter.close();
    return { kind, events, reserveUs: summarise(us), reserves: us.length, setupSeconds };
  } finally {
    db.close();
    rmSync(path, { force: true });
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
  }
}
