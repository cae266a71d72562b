/**
 * The limiter alone, in this process: one SqliteLimiter on a temp SQLite file (opened as the
 * gateway opens it: WAL, synchronous=NORMAL), the gateway's rules (hourly and daily on the global
 * request series), and N events already in both windows, bulk-inserted in one transaction with
 * correct cumulative totals. Each reserve is timed alone; after every batch the events the batch
 * appended are removed again (untimed), so the window holds N to N + batch events throughout.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { DAY_MS, GLOBAL_REQUESTS, HOUR_MS } from '../../src/limits/rules.js';
import type { LimitRule, SeriesCost } from '../../src/limits/limiter.js';
import { summarise, type Summary } from './stats.js';

export interface LimiterFigures {
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

export async function limiterCost(dir: string, events: number, reserves: number, batch = 500, warmup = 200): Promise<LimiterFigures> {
  const path = join(dir, `limiter-${events}.db`);
  const db = openSqlite(path);
  try {
    const limiter = new SqliteLimiter(db); // creates the schema
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
    const restore = () => {
      trim.run(GLOBAL_REQUESTS, events);
      resetSeries.run(events, lastTs, GLOBAL_REQUESTS);
    };

    for (let i = 0; i < warmup; i++) await limiter.reserve(RULES, COSTS);
    restore();
    const us: number[] = [];
    while (us.length < reserves) {
      for (let i = 0; i < batch && us.length < reserves; i++) {
        const start = process.hrtime.bigint();
        const decision = await limiter.reserve(RULES, COSTS);
        us.push(Number(process.hrtime.bigint() - start) / 1e3);
        if (!decision.admitted) throw new Error('limiter refused a reserve in the bench');
      }
      restore();
    }
    await limiter.close();
    return { events, reserveUs: summarise(us), reserves: us.length, setupSeconds };
  } finally {
    db.close();
    rmSync(path, { force: true });
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
  }
}
