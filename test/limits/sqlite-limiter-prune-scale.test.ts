/**
 * SqliteLimiter on a real SQLite file with an injected clock, upkeep and scale: pruning old events
 * and expired holds without changing any answer, index use (no scans), exact answers with 200,000
 * events in the window, and two connections to one file agreeing.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import type { Reservation } from '../../src/limits/limiter.js';
import { costs, DAY, daily, HOUR, hourly, limiterFixture, T0 } from './sqlite-limiter-helpers.js';

const { ctx, take, hold, fillAt } = limiterFixture();

describe('prune', () => {
  const eventTimes = () => (ctx.db.prepare('SELECT ts FROM limit_events ORDER BY cum').all() as { ts: number }[]).map((r) => r.ts - T0);

  it('deletes only events older than the horizon, and answers stay the same', async () => {
    const rules = [hourly(1000), daily(1000)];
    const offsets = [0, 1000, 1000, 2000, 3 * HOUR, 5 * HOUR, DAY - 1000];
    await fillAt(rules, offsets);

    // Check the answers at several later moments (some exactly where an event leaves), before and
    // after pruning at each one.
    for (const at of [DAY - 1000, DAY, DAY + 999, DAY + 1000, DAY + 1999, DAY + 2000, DAY + 3 * HOUR, DAY + 5 * HOUR - 1, 2 * DAY - 1000, 2 * DAY]) {
      ctx.now = T0 + at;
      const before = await ctx.limiter.peek(rules);
      const ids = eventTimes();
      const removed = await ctx.limiter.prune(() => DAY);
      const expectedKept = ids.filter((t) => t > at - DAY);
      expect(eventTimes()).toEqual(expectedKept);
      expect(removed).toBe(ids.length - expectedKept.length);
      expect(await ctx.limiter.peek(rules)).toEqual(before);
      const brute = (window: number) => offsets.filter((t) => t > at - window).length;
      expect(before.map((s) => s.used)).toEqual([brute(HOUR), brute(DAY)]);
    }
  });

  it('keeps exact counts when new events come after a prune', async () => {
    const rules = [hourly(3)];
    await fillAt(rules, [0, 10, 20]);
    ctx.now = T0 + 2 * HOUR;
    expect(await ctx.limiter.prune(() => HOUR)).toBe(3);
    await fillAt(rules, [2 * HOUR, 2 * HOUR + 10, 2 * HOUR + 20]);
    ctx.now = T0 + 2 * HOUR + 30;
    const decision = await take(rules);
    expect(decision.admitted).toBe(false);
    expect(decision.retryAfterMs).toBe(HOUR - 30);
    expect(await ctx.limiter.prune(() => HOUR)).toBe(0);
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(3);
  });

  it('sweeps expired holds and only those', async () => {
    ctx.limiter = new SqliteLimiter(ctx.db, ctx.clock, 60_000);
    const rules = [hourly(2)];
    ctx.now = T0;
    const first = await hold(rules);
    ctx.now = T0 + 30_000;
    const second = await hold(rules);
    expect((await take(rules)).admitted).toBe(false);

    ctx.now = T0 + 59_999;
    expect(await ctx.limiter.prune(() => DAY)).toBe(0);
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(2);

    ctx.now = T0 + 60_000;
    expect(await ctx.limiter.prune(() => DAY)).toBe(1);
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
    // The swept hold is gone for good: settling it later does not go negative or double count.
    await ctx.limiter.release(first.reservation!);
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);
    await ctx.limiter.commit(second.reservation!);
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1 });
    expect(ctx.db.prepare('SELECT count(*) AS n FROM limit_holds').get()).toEqual({ n: 0 });
  });
});

describe('cost of a check', () => {
  type Stmts = Record<string, Statement>;
  const statementsOf = (l: SqliteLimiter): Stmts => (l as unknown as { stmt: Stmts }).stmt;

  it('uses an index for every query on events and holds (no SCAN)', () => {
    const stmts = statementsOf(ctx.limiter);
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

  it('answers exactly with 200,000 events in the window', async () => {
    // Irregular times (with repeats) and costs 1..3, from a small deterministic generator.
    let seed = 42;
    const rand = () => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
    };
    const n = 200_000;
    const ts = new Float64Array(n);
    const cost = new Uint8Array(n);
    let t = T0;
    let cum = 0;
    const insert = ctx.db.prepare('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)');
    ctx.db.transaction(() => {
      for (let i = 0; i < n; i++) {
        t += Math.floor(rand() * 900); // about 200,000 × 450 ms ≈ 25 h
        ts[i] = t;
        cost[i] = 1 + Math.floor(rand() * 3);
        cum += cost[i]!;
        insert.run('big', cum, t);
      }
      ctx.db.prepare('INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, 0)').run('big', cum, t);
    })();
    const last = t;
    const brute = (at: number, window: number) => {
      let sum = 0;
      let oldest: number | undefined;
      for (let i = n - 1; i >= 0 && ts[i]! > at - window; i--) {
        if (ts[i]! <= at) {
          sum += cost[i]!;
          oldest = ts[i]!;
        }
      }
      return { sum, oldest };
    };

    const rules = [hourly(1_000_000, 'big'), daily(1_000_000, 'big')];
    for (const at of [last, last + 1, last + 10 * 60_000, last + HOUR - 1, last + 5 * HOUR]) {
      ctx.now = at;
      const states = await ctx.limiter.peek(rules);
      for (const [i, window] of [HOUR, DAY].entries()) {
        const expected = brute(at, window);
        expect(states[i]!.used).toBe(expected.sum);
        expect(states[i]!.resetMs).toBe(expected.oldest === undefined ? 0 : expected.oldest + window - at);
      }
    }

    // A limit exactly at the hourly count: full, and the retry is when enough has left.
    ctx.now = last + 1;
    const count = brute(ctx.now, HOUR);
    const full = [hourly(count.sum, 'big')];
    const decision = await take(full, 1);
    expect(decision.admitted).toBe(false);
    // The first event in the window leaves at oldest + HOUR; its cost frees at least one unit.
    expect(decision.retryAfterMs).toBe(count.oldest! + HOUR - ctx.now);
    const roomy = [hourly(count.sum + 1, 'big')];
    const ok = await take(roomy, 1);
    expect(ok.admitted).toBe(true);
    expect(ok.states[0]!.used).toBe(count.sum + 1);
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
