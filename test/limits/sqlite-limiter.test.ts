/**
 * What only the transactional SqliteLimiter promises, on a real SQLite file with an injected
 * clock: every query it runs on events and holds uses an index (no scans, no sorts), two
 * connections (worker processes) to one file share one exact count, and holds live as rows in
 * limit_holds that the expiry sweep deletes.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
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
      expect(plan, `${name}: ${source}`).not.toMatch(/SCAN limit_events|SCAN limit_holds/);
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
    await ctx.limiter.release(first.reservation!);
    expect(heldColumn()).toEqual({ held: 1 });
    await ctx.limiter.commit(second.reservation!);
    expect(holdRows()).toEqual({ n: 0 });
    expect(heldColumn()).toEqual({ held: 0 });
  });
});
