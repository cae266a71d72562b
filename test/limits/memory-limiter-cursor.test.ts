/**
 * MemoryLimiter window edges, on real SQLite files with an injected clock: a window holding more
 * events than one read-ahead chunk (256) answers exactly like a SqliteLimiter fed the same events
 * while its edge walks forward across chunk boundaries, back (re-seek) and far ahead (past every
 * event), whether the events are journaled, in the journal only, or both; events still only in
 * the journal are seen by the edge and by Retry-After (each series' own); and a check whose edges
 * stay within their read-ahead reads nothing from SQLite (the cost the cursors exist to save).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from '../../src/store/sqlite-db.js';
import type { MemoryLimiter } from '../../src/limits/memory.js';
import type { LimitRule } from '../../src/limits/limiter.js';
import { DAY, daily, HOUR, hourly, limiterFixture, T0, referenceLimiter } from './limiter-helpers.js';

const MINUTE = 60_000;
/** The running total of the newest stored event: what the tables know has been counted. */
const storedTotal = (db: SqliteDatabase) => (db.prepare('SELECT coalesce(max(cum), 0) AS n FROM limit_events').get() as { n: number }).n;

describe('read-ahead across chunk boundaries, compared with a SqliteLimiter', () => {
  // Flushes only when the test says so.
  const { ctx, sync } = limiterFixture('memory', { memory: { flushMs: 3_600_000 } });
  const ref = referenceLimiter(ctx);

  const tenMinutes = (limit: number): LimitRule => ({ name: 'ten_minutes', series: 's', unit: 'requests', windowMs: 10 * MINUTE, limit });
  const rules = [hourly(1_000_000), tenMinutes(1_000_000), daily(1_000_000)];

  /** Every counted event, for a brute-force count. */
  let events: { ts: number; amount: number }[];
  beforeEach(() => {
    events = [];
  });

  /** Counts `amount` at the current time in both limiters. */
  async function count(amount: number): Promise<void> {
    const cost = { s: { amount, hold: false } };
    const [mine, theirs] = await Promise.all([ctx.limiter.reserve([], cost), ref.limiter.reserve([], cost)]);
    expect(mine.admitted && theirs.admitted).toBe(true);
    events.push({ ts: ctx.now, amount });
  }

  /**
   * Both limiters answer the same, and as a brute-force count says, at the current time. A clock
   * moved back before the newest event still counts that event (a series' times never go back).
   */
  async function expectSameAnswers(): Promise<void> {
    const mine = await ctx.limiter.peek(rules);
    expect(mine).toEqual(await ref.limiter.peek(rules));
    for (const [i, rule] of rules.entries()) {
      const inside = events.filter((e) => e.ts > ctx.now - rule.windowMs);
      expect(mine[i]!.used, `${rule.name} at +${ctx.now - T0} ms`).toBe(inside.reduce((sum, e) => sum + e.amount, 0));
      expect(mine[i]!.resetMs).toBe(inside.length === 0 ? 0 : inside[0]!.ts + rule.windowMs - ctx.now);
    }
    // A refusal's wait depends on where enough has left the window: the same in both.
    const used = mine[1]!.used;
    if (used > 0) {
      const tight = [tenMinutes(used)];
      const cost = { s: { amount: Math.min(used, 3), hold: false } };
      const refused = await ctx.limiter.reserve(tight, cost);
      expect(refused.admitted).toBe(false);
      expect(refused).toEqual(await ref.limiter.reserve(tight, cost));
    }
  }

  it.each([
    ['only in the journal', 0],
    ['half journaled', 500],
    ['all journaled', 1000],
  ])('gives the same used, remaining and resetMs at every step (events %s)', async (_label, flushAfter) => {
    // 1,000 events over an hour, some at the same millisecond, costs 1..3.
    for (let i = 0; i < 1000; i++) {
      ctx.now = T0 + (i % 7 === 3 ? Math.floor((i - 1) * 3_600) : Math.floor(i * 3_600));
      await count(1 + ((i * 7) % 3));
      if (i + 1 === flushAfter) sync();
    }
    const total = (n: number) => events.slice(0, n).reduce((sum, e) => sum + e.amount, 0);
    expect(storedTotal(ctx.db)).toBe(total(flushAfter));
    expect(storedTotal(ref.db)).toBe(total(1000));

    // Forward: the hourly edge walks across every event (and so across several 256-event chunks),
    // with a new event now and then behind the read-ahead.
    let step = 0;
    for (ctx.now = T0 + HOUR; ctx.now <= T0 + 2 * HOUR + MINUTE; ctx.now += 45_000) {
      await expectSameAnswers();
      if (++step % 10 === 0) await count(2);
    }
    // Back: the edges must seek again, to before events they had passed.
    for (const at of [T0 + HOUR + 30 * MINUTE, T0 + HOUR + 5 * MINUTE, T0 + HOUR + 5 * MINUTE + 45_000, T0 + 2 * HOUR + MINUTE]) {
      ctx.now = at;
      await expectSameAnswers();
    }
    // Far ahead, past every event, and back.
    ctx.now = T0 + 3 * DAY;
    await expectSameAnswers();
    expect((await ctx.limiter.peek(rules)).map((s) => s.used)).toEqual([0, 0, 0]);
    ctx.now = T0 + HOUR + 20 * MINUTE;
    await expectSameAnswers();
    // The walk saw a non-empty hourly window at the start, so the comparisons compared something.
    ctx.now = T0 + HOUR;
    expect((await ctx.limiter.peek(rules))[0]!.used).toBeGreaterThan(1000);
  });

  it('keeps answering the same when the journal is written while the edge is between chunks', async () => {
    for (let i = 0; i < 1000; i++) {
      ctx.now = T0 + i * 3_600;
      await count(1);
    }
    for (ctx.now = T0 + HOUR; ctx.now <= T0 + 2 * HOUR; ctx.now += 4 * MINUTE) {
      await expectSameAnswers();
      await count(1);
      sync();
    }
    expect(storedTotal(ctx.db)).toBe(events.length);
  });
});

describe('events still only in the journal', () => {
  const { ctx, take, fillAt, sync } = limiterFixture('memory', { memory: { flushMs: 3_600_000 } });

  it('leave the window exactly when their time comes', async () => {
    const rules = [hourly(3)];
    await fillAt(rules, [0, 10_000, 20_000]);
    expect(storedTotal(ctx.db)).toBe(0);

    ctx.now = T0 + 30_000;
    const refused = await take(rules);
    expect(refused.admitted).toBe(false);
    expect(refused.retryAfterMs).toBe(HOUR - 30_000);

    const usedAt = async (offset: number) => {
      ctx.now = T0 + offset;
      return (await ctx.limiter.peek(rules))[0];
    };
    expect(await usedAt(HOUR - 1)).toMatchObject({ used: 3, resetMs: 1 });
    expect(await usedAt(HOUR)).toMatchObject({ used: 2, resetMs: 10_000 });
    expect(await usedAt(HOUR + 10_000)).toMatchObject({ used: 1, resetMs: 10_000 });
    expect(await usedAt(HOUR + 20_000)).toMatchObject({ used: 0, resetMs: 0 });
    expect(storedTotal(ctx.db)).toBe(0);
    sync();
    expect(storedTotal(ctx.db)).toBe(3);
  });

  it('give the exact Retry-After when the refusal waits for one of them', async () => {
    const rules = [hourly(5)];
    await fillAt(rules, [0, 1000]);
    sync();
    await fillAt(rules, [2000, 3000, 4000]);
    expect(storedTotal(ctx.db)).toBe(2);

    ctx.now = T0 + 5000;
    // Four must leave: the fourth (journal only) leaves at 3000 + HOUR.
    const refused = await take(rules, 4);
    expect(refused.admitted).toBe(false);
    expect(refused.retryAfterMs).toBe(3000 + HOUR - 5000);
    // Two must leave: the second (journaled) leaves at 1000 + HOUR.
    expect((await take(rules, 2)).retryAfterMs).toBe(1000 + HOUR - 5000);

    ctx.now = T0 + 3000 + HOUR - 1;
    expect((await take(rules, 4)).admitted).toBe(false);
    ctx.now = T0 + 3000 + HOUR;
    expect((await take(rules, 4)).states[0]).toMatchObject({ used: 5, remaining: 0 });
  });

  it('give each series the wait of its own events, not of another series counted before them', async () => {
    // Series 'a' first in the journal, with a running total above what 's' needs to leave.
    expect((await take([hourly(100, 'a')], 10)).admitted).toBe(true);
    const rules = [hourly(2)];
    await fillAt(rules, [1000, 2000]);
    expect(storedTotal(ctx.db)).toBe(0);
    ctx.now = T0 + 3000;
    // One of 's' must leave: its first, at 1000 + HOUR (the event of 'a' at T0 is not 's''s).
    expect((await take(rules)).retryAfterMs).toBe(1000 + HOUR - 3000);
  });
});

describe('what a check reads from SQLite', () => {
  const { ctx, take, fillAt, sync } = limiterFixture('memory', { memory: { flushMs: 3_600_000 } });

  /** Counts every query the limiter runs from now on (reads and writes alike). */
  function countQueries(): { n: number } {
    const count = { n: 0 };
    const stmts = (ctx.limiter as unknown as { stmt: Record<string, Statement> }).stmt;
    expect(Object.keys(stmts)).toEqual(expect.arrayContaining(['lastAtOrBefore', 'after']));
    for (const stmt of Object.values(stmts)) {
      for (const method of ['get', 'all', 'run'] as const) {
        const original = stmt[method].bind(stmt) as (...args: unknown[]) => unknown;
        (stmt as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          count.n++;
          return original(...args);
        };
      }
    }
    return count;
  }

  it('is nothing once the window edge has its read-ahead, whether it moves or not, and for an empty window', async () => {
    const rules = [hourly(100)];
    await fillAt(rules, [0, 1000]);
    sync(); // two events stored, two more only in the journal
    await fillAt(rules, [2000, 3000]);
    expect(storedTotal(ctx.db)).toBe(2);
    const queries = countQueries();
    const usedAt = async (offset: number) => {
      ctx.now = T0 + offset;
      return (await ctx.limiter.peek(rules))[0]!.used;
    };

    // The first check reads the edge and what follows it: the stored event and the journal's.
    expect(await usedAt(HOUR)).toBe(3); // the edge exactly at the first event
    expect(queries.n).toBeGreaterThan(0);
    const first = queries.n;
    expect(await usedAt(HOUR)).toBe(3); // again at the same edge
    expect(await usedAt(HOUR + 1500)).toBe(2); // past the stored event, onto the journal's
    expect(await usedAt(HOUR + 2500)).toBe(1);
    expect(await usedAt(HOUR + 5000)).toBe(0); // past every event: an empty window
    expect(await usedAt(HOUR + 6000)).toBe(0);
    expect(queries.n).toBe(first);
  });
});
