/**
 * What only the transactional SqliteLimiter promises, on a real SQLite file with an injected
 * clock: every query it runs on events and holds uses an index (no scans, no sorts), two
 * connections (worker processes) to one file share one exact count, holds live as rows in
 * limit_holds that the expiry sweep moves to limit_expired_holds (for a late commit), a
 * database of an older version gains that table without losing anything, settling a reservation
 * that holds nothing does not touch the database (it never waits for another connection's write
 * lock), and when the one
 * transaction of a batch of reservations fails, every reservation of the batch fails with it.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { MemoryLimiter } from '../../src/limits/memory.js';
import type { Reservation } from '../../src/limits/limiter.js';
import { costs, DAY, daily, hourly, limiterFixture, T0 } from './limiter-helpers.js';

const { ctx, take, hold, reopen } = limiterFixture('sqlite');

describe('cost of a check', () => {
  type Stmts = Record<string, Statement>;
  const statementsOf = (l: SqliteLimiter): Stmts => (l as unknown as { stmt: Stmts }).stmt;

  it('uses an index for every query on events and holds (no SCAN)', () => {
    expect(ctx.limiter).toBeInstanceOf(SqliteLimiter);
    const stmts = statementsOf(ctx.limiter as SqliteLimiter);
    const names = Object.keys(stmts);
    // The check path must be among them, or this test checks nothing.
    expect(names).toEqual(expect.arrayContaining(['series', 'cumAtOrBefore', 'tsOfFirstCumAtLeast']));
    let checked = 0;
    for (const name of names) {
      const stmt = stmts[name]!;
      const source = stmt.source.trim();
      if (!/^(SELECT|DELETE|UPDATE)/i.test(source)) continue;
      const params = (source.match(/\?/g) ?? []).map(() => 1);
      const plan = (ctx.db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
      expect(plan, `${name}: ${source}`).not.toMatch(/SCAN limit_(events|holds|expired_holds)/);
      // A sort would read every matching row before LIMIT 1: the index order must serve it.
      expect(plan, `${name}: ${source}`).not.toMatch(/TEMP B-TREE/);
      if (/FROM limit_events/i.test(source)) {
        expect(plan, name).toMatch(/SEARCH limit_events USING (PRIMARY KEY|(COVERING )?INDEX)/);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });
});

describe('two connections to one file', () => {
  it('share one exact count', async () => {
    const db2 = openSqlite(join(ctx.dir, 'limits.db'));
    const other = new SqliteLimiter(db2, ctx.clock);
    try {
      const rules = [hourly(10), daily(12)];
      let admitted = 0;
      const reservations: Reservation[] = [];
      for (let i = 0; i < 30; i++) {
        ctx.now = T0 + i * 1000;
        const d = await (i % 2 === 0 ? ctx.limiter : other).reserve(rules, costs(rules, 1, i % 3 === 0));
        if (d.admitted) {
          admitted++;
          if (Object.keys(d.reservation!.held).length > 0) reservations.push(d.reservation!);
        }
      }
      expect(admitted).toBe(10);
      expect(await ctx.limiter.peek(rules)).toEqual(await other.peek(rules));
      // A hold taken on one connection is settled on the other.
      for (const r of reservations) await other.release(r);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(10 - reservations.length);
      expect(reservations.length).toBeGreaterThan(0);
    } finally {
      await other.close();
      db2.close();
    }
  });
});

describe('holds in limit_holds', () => {
  const holdRows = () => ctx.db.prepare('SELECT count(*) AS n FROM limit_holds').get();
  const heldColumn = () => ctx.db.prepare("SELECT held FROM limit_series WHERE series = 's'").get();
  const expiredRows = () => ctx.db.prepare('SELECT token, series, amount, expired_at FROM limit_expired_holds ORDER BY token').all();

  it('keeps one row per held series until settled, and the sweep deletes only expired ones', async () => {
    await reopen({ holdTtlMs: 60_000 });
    const rules = [hourly(2)];
    ctx.now = T0;
    const first = await hold(rules);
    ctx.now = T0 + 30_000;
    const second = await hold(rules);
    expect(holdRows()).toEqual({ n: 2 });
    expect(heldColumn()).toEqual({ held: 2 });
    expect((await take(rules)).admitted).toBe(false);

    ctx.now = T0 + 59_999;
    expect(await ctx.limiter.prune(() => DAY)).toBe(0);
    expect(holdRows()).toEqual({ n: 2 });

    ctx.now = T0 + 60_000;
    expect(await ctx.limiter.prune(() => DAY)).toBe(1);
    expect(holdRows()).toEqual({ n: 1 });
    expect(heldColumn()).toEqual({ held: 1 });
    expect(expiredRows()).toEqual([{ token: first.reservation!.id, series: 's', amount: 1, expired_at: T0 + 60_000 }]);
    await ctx.limiter.release(first.reservation!);
    expect(heldColumn()).toEqual({ held: 1 });
    expect(expiredRows()).toEqual([]);
    await ctx.limiter.commit(second.reservation!);
    expect(holdRows()).toEqual({ n: 0 });
    expect(heldColumn()).toEqual({ held: 0 });
  });
});

describe('a database of an older version (no limit_expired_holds)', () => {
  /** The limiter tables as the version before late commits made them, with a hold and an event in them. */
  function oldDatabase(file: string) {
    const db = openSqlite(file);
    db.exec(`
      CREATE TABLE limit_series (series TEXT PRIMARY KEY, cum INTEGER NOT NULL DEFAULT 0, last_ts INTEGER NOT NULL DEFAULT 0,
        held INTEGER NOT NULL DEFAULT 0, base_cum INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE limit_events (series TEXT NOT NULL, cum INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (series, cum)) WITHOUT ROWID;
      CREATE INDEX limit_events_by_time ON limit_events (series, ts, cum);
      CREATE TABLE limit_holds (token TEXT NOT NULL, series TEXT NOT NULL, amount INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        PRIMARY KEY (token, series)) WITHOUT ROWID;
      CREATE INDEX limit_holds_by_expiry ON limit_holds (expires_at);
      INSERT INTO limit_series (series, cum, last_ts, held) VALUES ('s', 3, ${T0}, 100);
      INSERT INTO limit_events (series, cum, ts) VALUES ('s', 3, ${T0});
      INSERT INTO limit_holds (token, series, amount, expires_at) VALUES ('old-hold', 's', 100, ${T0 + 60_000});
    `);
    return db;
  }
  const hasExpiredTable = (db: ReturnType<typeof openSqlite>) =>
    db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name IN ('limit_expired_holds', 'limit_expired_holds_by_expiry', 'limit_expired_holds_by_series')").get();

  it('gains the table on open (SqliteLimiter), keeps its counts and holds, and a hold of before counts when committed late', async () => {
    const db = oldDatabase(join(ctx.dir, 'old.db'));
    const limiter = new SqliteLimiter(db, ctx.clock, 60_000);
    try {
      expect(hasExpiredTable(db)).toEqual({ n: 3 });
      const rules = [daily(1000)];
      ctx.now = T0 + 120_000;
      expect((await limiter.peek(rules))[0]!.used).toBe(103);
      expect(await limiter.prune(() => DAY)).toBe(1);
      expect((await limiter.peek(rules))[0]!.used).toBe(3);
      await limiter.commit({ id: 'old-hold', held: { s: 100 } }, { s: 40 });
      expect((await limiter.peek(rules))[0]!.used).toBe(43);
    } finally {
      await limiter.close();
      db.close();
    }
  });

  it('gains the table on open (MemoryLimiter), which ends the holds of before as it starts', async () => {
    const db = oldDatabase(join(ctx.dir, 'old-memory.db'));
    const limiter = new MemoryLimiter(db, ctx.clock, 60_000);
    try {
      expect(hasExpiredTable(db)).toEqual({ n: 3 });
      expect((await limiter.peek([daily(1000)]))[0]!.used).toBe(3);
    } finally {
      await limiter.close();
      db.close();
    }
  });
});

describe('a batch of reservations whose transaction fails', () => {
  it('rejects every reservation of the batch with the error, and counts none of them', async () => {
    const rules = [hourly(10)];
    // Not a busy database (that is retried): a write that SQLite refuses, as a full disk would.
    ctx.db.exec("CREATE TEMP TRIGGER refuse BEFORE INSERT ON limit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    // Asked in one turn of the event loop: one transaction for the three.
    const outcomes = await Promise.allSettled([take(rules), hold(rules), take(rules)]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'admitted'))).toEqual(['disk full', 'disk full', 'disk full']);
    ctx.db.exec('DROP TRIGGER refuse');
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 0 });
    expect(ctx.db.prepare('SELECT count(*) AS n FROM limit_holds').get()).toEqual({ n: 0 });
  }, 2_000); // a batch left unanswered hangs: fail soon
});

describe('settling a reservation that holds nothing', () => {
  it('does not touch the database: it does not wait while another connection holds the write lock', async () => {
    // This limiter's own connection fails at once on a lock instead of waiting inside SQLite.
    const mine = openSqlite(join(ctx.dir, 'limits.db'), 0);
    const limiter = new SqliteLimiter(mine, ctx.clock);
    const locker = openSqlite(join(ctx.dir, 'limits.db'));
    try {
      const rules = [hourly(10)];
      const counted = await limiter.reserve(rules, costs(rules, 1, false));
      const held = await limiter.reserve(rules, costs(rules, 1, true));
      expect(counted.reservation!.held).toEqual({});
      locker.exec('BEGIN IMMEDIATE');
      await limiter.commit(counted.reservation!);
      await limiter.release(counted.reservation!);
      // A reservation that holds something must wait for the lock: the lock is really in the way.
      let settled = false;
      const waiting = limiter.commit(held.reservation!).then(() => (settled = true));
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(settled).toBe(false);
      locker.exec('COMMIT');
      await waiting;
      expect((await limiter.peek(rules))[0]).toMatchObject({ used: 2 });
    } finally {
      if (locker.inTransaction) locker.exec('ROLLBACK');
      await limiter.close();
      mine.close();
      locker.close();
    }
  }, 2_000); // waiting for the lock hangs (retried for 10 s): fail soon
});
