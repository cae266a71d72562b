/**
 * MemoryLimiter durability, on real SQLite files with an injected clock: what one limiter counted
 * is counted the same by the next one on the file (rolling and calendar-month windows), the
 * journal leaves the same totals in the tables as a SqliteLimiter fed the same calls, a crash
 * loses at most the journal not yet written, one file takes one memory limiter at a time, and a
 * memory limiter started on a file a SqliteLimiter wrote counts its events and drops its holds.
 */
import { describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { MemoryLimiter } from '../../src/limits/memory.js';
import { LEASE_TTL_MS, LimiterConflictError } from '../../src/limits/ownership.js';
import type { LimitRule, Reservation, SeriesCost } from '../../src/limits/limiter.js';
import { MONTH_MS } from '../../src/limits/rules.js';
import { DAY, daily, HOUR, hourly, limiterFixture, T0, referenceLimiter } from './limiter-helpers.js';
import { tempDir } from '../helpers.js';

const BIG = 1_000_000;
const requests = [hourly(BIG, 'k:requests'), daily(BIG, 'k:requests')];
const tokens: LimitRule[] = [{ name: 'tph', series: 'k:tokens', unit: 'tokens', windowMs: HOUR, limit: BIG }];
const usd: LimitRule[] = [
  { name: 'usd_month', series: 'k:usd', unit: 'usd', windowMs: MONTH_MS, calendarMonth: true, limit: BIG },
  { name: 'usd_day', series: 'k:usd', unit: 'usd', windowMs: DAY, limit: BIG },
];
const allRules = [...requests, ...tokens, ...usd];

const storedTotal = (db: SqliteDatabase, series = 's') =>
  (db.prepare('SELECT coalesce(max(cum), 0) AS n FROM limit_events WHERE series = ?').get(series) as { n: number }).n;
/** The running total at each stored time: the same whether events of one millisecond share a row or not. */
const totalsByTime = (db: SqliteDatabase) =>
  db.prepare('SELECT series, ts, max(cum) AS cum FROM limit_events GROUP BY series, ts ORDER BY series, ts').all();
const seriesRows = (db: SqliteDatabase) =>
  db.prepare('SELECT series, cum, last_ts, base_cum, held FROM limit_series ORDER BY series').all() as { held: number }[];

describe('restart on the same file', () => {
  const FEB = Date.UTC(2026, 1, 1);
  const { ctx, sync, reopen } = limiterFixture('memory', { start: FEB - 4 * HOUR, memory: { flushMs: 3_600_000 } });
  const ref = referenceLimiter(ctx);

  /** The same call on both limiters; they must decide alike. */
  async function both(costs: Record<string, SeriesCost>): Promise<[Reservation, Reservation]> {
    const [mine, theirs] = await Promise.all([ctx.limiter.reserve(allRules, costs), ref.limiter.reserve(allRules, costs)]);
    expect(mine).toMatchObject({ admitted: true, states: theirs.states });
    return [mine.reservation!, theirs.reservation!];
  }
  const call = (tokenEstimate: number, micros: number) => ({
    'k:requests': { amount: 1, hold: false },
    'k:tokens': { amount: tokenEstimate, hold: true },
    'k:usd': { amount: micros, hold: false },
  });

  it('answers as before, with the same totals in the tables as a SqliteLimiter leaves', async () => {
    for (let i = 0; i < 40; i++) {
      ctx.now = FEB - 4 * HOUR + i * 5 * 60_000 + (i % 4 === 1 ? -5 * 60_000 : 0); // some in the same millisecond
      const [mine, theirs] = await both(call(100 + i, 1000 * i));
      if (i % 5 === 4) {
        await Promise.all([ctx.limiter.release(mine), ref.limiter.release(theirs)]);
      } else {
        await Promise.all([ctx.limiter.commit(mine, { 'k:tokens': 10 + i }), ref.limiter.commit(theirs, { 'k:tokens': 10 + i })]);
      }
    }
    // One call still in flight when the limiter stops: its hold ends with the process.
    ctx.now += 1000;
    const [, inFlight] = await both(call(500, 7));
    const before = await ctx.limiter.peek(allRules);
    expect(before).toEqual(await ref.limiter.peek(allRules));

    sync();
    expect(totalsByTime(ctx.db)).toEqual(totalsByTime(ref.db));
    expect(storedTotal(ctx.db, 'k:usd')).toBeGreaterThan(0);

    await reopen();
    await ref.limiter.release(inFlight);
    const after = await ctx.limiter.peek(allRules);
    expect(after).toEqual(await ref.limiter.peek(allRules));
    expect(after.find((s) => s.name === 'tph')!.used).toBe(before.find((s) => s.name === 'tph')!.used - 500);
    expect(after.filter((s) => s.name !== 'tph')).toEqual(before.filter((s) => s.name !== 'tph'));
    expect(seriesRows(ctx.db)).toEqual(seriesRows(ref.db));
    expect(totalsByTime(ctx.db)).toEqual(totalsByTime(ref.db));

    // Into February: the month starts empty, the rolling day still counts; the same after another restart.
    for (const at of [FEB - 1, FEB, FEB + 2 * HOUR]) {
      ctx.now = at;
      const states = await ctx.limiter.peek(allRules);
      expect(states).toEqual(await ref.limiter.peek(allRules));
      await reopen();
      expect(await ctx.limiter.peek(allRules)).toEqual(states);
    }
    ctx.now = FEB + 2 * HOUR;
    const [month, day] = await ctx.limiter.peek(usd);
    expect(month!.used).toBe(0);
    expect(day!.used).toBeGreaterThan(0);
  });

  it('keeps a calendar month across a restart: used, remaining and the reset at the month end', async () => {
    const spend = (amount: number) => ctx.limiter.reserve(usd, { 'k:usd': { amount, hold: false } });
    ctx.now = FEB - 3 * DAY;
    await spend(300);
    ctx.now = FEB - 2 * HOUR;
    await spend(200);
    const before = await ctx.limiter.peek(usd);
    expect(before[0]).toMatchObject({ used: 500, resetMs: 2 * HOUR });
    await reopen();
    expect(await ctx.limiter.peek(usd)).toEqual(before);
    ctx.now = FEB;
    expect((await ctx.limiter.peek(usd))[0]).toMatchObject({ used: 0, resetMs: 0 });
  });
});

describe('crash bound and one memory limiter per file', () => {
  const { ctx, take, sync } = limiterFixture('memory', { memory: { flushMs: 3_600_000 } });
  const rules = [hourly(100)];

  it('keeps counts in memory until the journal is written, and a crash loses only those', async () => {
    for (let i = 0; i < 5; i++) {
      ctx.now = T0 + i * 1000;
      await take(rules);
    }
    expect(storedTotal(ctx.db)).toBe(0);
    expect(seriesRows(ctx.db)).toEqual([]);
    sync();
    expect(storedTotal(ctx.db)).toBe(5);
    expect(seriesRows(ctx.db)).toEqual([{ series: 's', cum: 5, last_ts: T0 + 4000, base_cum: 0, held: 0 }]);

    for (let i = 5; i < 8; i++) {
      ctx.now = T0 + i * 1000;
      await take(rules);
    }
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(8);
    expect(storedTotal(ctx.db)).toBe(5);

    // The file as a crash now would leave it; the dead process's lease has gone stale.
    const crashed = join(ctx.dir, 'crashed.db');
    writeFileSync(crashed, ctx.db.serialize());
    const db2 = openSqlite(crashed);
    db2.prepare('UPDATE limit_owners SET renewed = ?').run(Date.now() - LEASE_TTL_MS - 1);
    const successor = new MemoryLimiter(db2, ctx.clock);
    try {
      expect((await successor.peek(rules))[0]).toMatchObject({ used: 5, resetMs: HOUR - 7000 });
      // Counting goes on from the journaled total.
      expect((await successor.reserve(rules, { s: { amount: 1, hold: false } })).states[0]!.used).toBe(6);
      successor.flush();
      expect(storedTotal(db2)).toBe(6);
    } finally {
      await successor.close();
      db2.close();
    }
  });

  it('refuses a second memory limiter on the file while the first runs, and accepts one after it closes', async () => {
    await take(rules);
    const db2 = openSqlite(ctx.file);
    try {
      expect(() => new MemoryLimiter(db2, ctx.clock)).toThrow(LimiterConflictError);
      await ctx.limiter.close();
      expect(storedTotal(ctx.db)).toBe(1); // close wrote the journal
      const second = new MemoryLimiter(db2, ctx.clock);
      try {
        expect((await second.peek(rules))[0]).toMatchObject({ used: 1, resetMs: HOUR });
      } finally {
        await second.close();
      }
    } finally {
      db2.close();
    }
  });
});

describe('taking over a file a SqliteLimiter wrote', () => {
  const { ctx, take } = limiterFixture('sqlite');

  it('counts its events exactly and drops its holds', async () => {
    const rules = [hourly(3)];
    const tph: LimitRule[] = [{ name: 'tph', series: 'tokens', unit: 'tokens', windowMs: HOUR, limit: 1000 }];
    for (const offset of [0, 10_000, 20_000]) {
      ctx.now = T0 + offset;
      expect((await take(rules)).admitted).toBe(true);
    }
    const held: Reservation[] = [];
    for (const amount of [100, 200, 300]) held.push((await ctx.limiter.reserve(tph, { tokens: { amount, hold: true } })).reservation!);
    await ctx.limiter.commit(held[2]!, { tokens: 40 });
    ctx.now = T0 + 30_000;
    const refusedBefore = await take(rules);
    expect(refusedBefore).toMatchObject({ admitted: false, retryAfterMs: HOUR - 30_000 });
    expect((await ctx.limiter.peek(tph))[0]!.used).toBe(340);
    expect(ctx.db.prepare('SELECT count(*) AS n FROM limit_holds').get()).toEqual({ n: 2 });

    await ctx.limiter.close();
    ctx.limiter = new MemoryLimiter(ctx.db, ctx.clock);

    expect(await take(rules)).toEqual(refusedBefore);
    expect((await ctx.limiter.peek(tph))[0]).toMatchObject({ used: 40, remaining: 960 });
    expect(ctx.db.prepare('SELECT count(*) AS n FROM limit_holds').get()).toEqual({ n: 0 });
    expect(seriesRows(ctx.db).map((r) => r.held)).toEqual([0, 0]);
    // The old reservations are gone: settling them changes nothing.
    await ctx.limiter.commit(held[0]!);
    await ctx.limiter.release(held[1]!);
    expect((await ctx.limiter.peek(tph))[0]!.used).toBe(40);

    // The window moves on from the events the SqliteLimiter stored.
    ctx.now = T0 + HOUR;
    expect((await take(rules)).states[0]).toMatchObject({ used: 3, remaining: 0, resetMs: 10_000 });
    await ctx.limiter.close();
    expect(storedTotal(ctx.db)).toBe(4);
  });
});

describe('reservations of an earlier limiter', () => {
  const { ctx, reopen } = limiterFixture('memory');

  it('never settle a hold of the next one on the same file', async () => {
    const rules: LimitRule[] = [{ name: 'tph', series: 'tokens', unit: 'tokens', windowMs: HOUR, limit: 100 }];
    const old = await ctx.limiter.reserve(rules, { tokens: { amount: 5, hold: true } });
    await reopen();
    const mine = await ctx.limiter.reserve(rules, { tokens: { amount: 9, hold: true } });
    expect(mine.reservation!.id).not.toBe(old.reservation!.id);
    await ctx.limiter.release(old.reservation!);
    await ctx.limiter.commit(old.reservation!, { tokens: 50 });
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(9);
  });
});

describe('pruning in chunks', () => {
  const { ctx, reopen } = limiterFixture('memory');

  it('deletes a chunk per transaction and lets calls in between see exact counts', async () => {
    await reopen({ memory: { pruneChunk: 3 } });
    const rules = [hourly(100)];
    for (let i = 0; i < 10; i++) {
      ctx.now = T0 + i;
      expect((await ctx.limiter.reserve(rules, { s: { amount: 1, hold: false } })).admitted).toBe(true);
    }
    (ctx.limiter as MemoryLimiter).flush();
    const stored = () => (ctx.db.prepare('SELECT count(*) AS n FROM limit_events').get() as { n: number }).n;
    expect(stored()).toBe(10);

    ctx.now = T0 + HOUR + 100;
    const pruning = ctx.limiter.prune(() => HOUR);
    expect(stored()).toBe(7); // the first chunk, before the first yield
    const during = await ctx.limiter.reserve(rules, { s: { amount: 1, hold: false } });
    expect(during.states[0]).toMatchObject({ used: 1, remaining: 99 });
    expect(await pruning).toBe(10);
    (ctx.limiter as MemoryLimiter).flush();
    expect(stored()).toBe(1);
    expect(ctx.db.prepare("SELECT base_cum FROM limit_series WHERE series = 's'").get()).toEqual({ base_cum: 10 });
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, resetMs: HOUR });
  });
});

describe('a journal that cannot be written', () => {
  it('is reported once while the failure lasts, and counting goes on in memory', async () => {
    const dir = tempDir();
    const db = openSqlite(join(dir, 'limits.db'));
    const errors: unknown[] = [];
    const limiter = new MemoryLimiter(db, () => T0, HOUR, { flushMs: 5, onError: (err) => errors.push(err) });
    try {
      const rules = [hourly(10)];
      expect((await limiter.reserve(rules, { s: { amount: 1, hold: false } })).admitted).toBe(true);
      db.pragma('query_only = ON'); // every write from now on fails (as on a full disk), and not because it is busy
      expect((await limiter.reserve(rules, { s: { amount: 1, hold: false } })).admitted).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 100)); // about 20 ticks
      expect(errors).toHaveLength(1);
      expect((await limiter.peek(rules))[0]).toMatchObject({ used: 2, remaining: 8 });
      // Once the database takes writes again, the kept journal is written.
      db.pragma('query_only = OFF');
      limiter.flush();
      expect(db.prepare("SELECT cum FROM limit_series WHERE series = 's'").get()).toEqual({ cum: 2 });
    } finally {
      await limiter.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
