/**
 * What only the Redis limiter promises, against the test Redis: by default it judges on the
 * Redis server's clock; every key it writes expires by itself; events past the horizon are
 * trimmed on write (in bounded chunks) without changing an answer, never what a rule of the call
 * can see; holds end at their expiry with no prune; prune walks every series of its own prefix
 * (and only those, whatever characters the prefix holds); calendar months are computed in the
 * script exactly as monthBounds computes them; totals that would lose precision are refused;
 * settling uses the stored hold, not the caller's copy; a closed limiter answers
 * LimiterUnavailable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RedisLimiter, LimiterUnavailable, type RedisLimiterOptions } from '../../src/limits/redis.js';
import { EXPIRY_REFRESH_MS, seriesKeys } from '../../src/limits/redis-scripts.js';
import { EXPIRED_HOLD_MEMORY_MS, monthBounds, type LimitRule } from '../../src/limits/limiter.js';
import { deleteKeys, inspector, uniquePrefix } from '../support/redis.js';
import { costs, DAY, daily, HOUR, hourly, limiterFixture, REDIS_URL, T0 } from './limiter-helpers.js';

describe.skipIf(REDIS_URL === null)('Redis limiter', () => {
  const { ctx, take, hold, storedTimes, storeEvents } = limiterFixture('redis');
  const url = REDIS_URL!;
  const opened: RedisLimiter[] = [];
  afterEach(async () => {
    for (const l of opened.splice(0)) await l.close();
  });
  /** Another limiter on this test's prefix (closed after the test). */
  const open = (options: Partial<RedisLimiterOptions> = {}) => {
    const limiter = new RedisLimiter({ url, prefix: ctx.redis!.prefix, clock: ctx.clock, ...options });
    opened.push(limiter);
    return limiter;
  };
  const withRedis = async <T>(use: (client: ReturnType<typeof inspector>) => Promise<T>): Promise<T> => {
    const client = inspector(url);
    try {
      return await use(client);
    } finally {
      client.disconnect();
    }
  };
  const serverTime = () => withRedis(async (c) => ((t) => Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000))(await c.time()));

  it("judges on the Redis server's clock when given none", async () => {
    const limiter = open({ clock: undefined });
    const before = await serverTime();
    const decision = await limiter.reserve([hourly(5)], { s: { amount: 1, hold: false } });
    const after = await serverTime();
    expect(decision.states[0]).toMatchObject({ used: 1, resetMs: HOUR });
    const [stamped] = await storedTimes('s');
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(after);
  });

  it('lets the five keys of a series expire together, a horizon (or a hold lifetime and a day) and at most two minutes after the last write', async () => {
    const limiter = open({ horizonMs: () => 2 * HOUR, holdTtlMs: 3 * HOUR });
    const expiries = (series: string) => withRedis((c) => Promise.all(seriesKeys(ctx.redis!.prefix, series).map((k) => c.call('PEXPIRETIME', k) as Promise<number>)));
    const since = await serverTime();
    await limiter.reserve([hourly(10, 'a')], { a: { amount: 1, hold: false } });
    const until = await serverTime();
    const [s, t, c, h, x] = await expiries('a');
    expect([h, x]).toEqual([-2, -2]); // no holds, none expired: no keys
    expect([t, c]).toEqual([s, s]);
    // The longer of horizon and hold lifetime (plus the time an expired hold is remembered), and
    // two refresh periods, after the write (server time).
    const keyTtl = 3 * HOUR + EXPIRED_HOLD_MEMORY_MS + 2 * EXPIRY_REFRESH_MS;
    expect(s).toBeGreaterThanOrEqual(since + keyTtl);
    expect(s).toBeLessThanOrEqual(until + keyTtl);
    // A hold made afterwards creates its key with the same expiry; released, the key goes; made again, it joins again.
    const held = await limiter.reserve([], { a: { amount: 2, hold: true } });
    expect(await expiries('a')).toEqual([s, s, s, s, -2]);
    await limiter.release(held.reservation!);
    expect((await expiries('a'))[3]).toBe(-2);
    await limiter.reserve([], { a: { amount: 2, hold: true } });
    expect(await expiries('a')).toEqual([s, s, s, s, -2]);
    // The hold expires (injected clock): only looking at the series moves it to the expired holds,
    // whose key joins the same expiry at once (and the holds' key goes, empty).
    ctx.now = T0 + 3 * HOUR;
    expect((await limiter.peek([daily(10, 'a')]))[0]!.used).toBe(1); // the counted one, not the expired hold
    expect(await expiries('a')).toEqual([s, s, s, -2, s]);
    // A longer window in a call (two days) moves all on at once.
    await limiter.reserve([{ ...daily(10, 'a'), windowMs: 2 * DAY }], { a: { amount: 1, hold: false } });
    const later = await expiries('a');
    expect(later[3]).toBe(-2);
    expect(new Set(later.filter((e) => e !== -2)).size).toBe(1);
    expect(later[0]! - (await serverTime())).toBeGreaterThan(2 * DAY);
    // A series only looked at stores nothing.
    await limiter.peek([hourly(10, 'looked-at')]);
    expect(await expiries('looked-at')).toEqual([-2, -2, -2, -2, -2]);
  });

  describe('trimming on write', () => {
    it('drops events past the horizon as it writes, and the answers stay exact', async () => {
      const limiter = open({ horizonMs: () => HOUR });
      const rules = [hourly(100)];
      const at = async (offset: number) => {
        ctx.now = T0 + offset;
        expect((await limiter.reserve(rules, costs(rules, 1, false))).admitted).toBe(true);
      };
      for (const offset of [0, 1000, 2000, HOUR + 500]) await at(offset);
      // The write at 1 h + 500 ms trimmed the event at 0 (at or before now - 1 h) and kept the rest.
      expect(await storedTimes('s')).toEqual([T0 + 1000, T0 + 2000, T0 + HOUR + 500]);
      ctx.now = T0 + HOUR + 1500;
      expect((await limiter.peek(rules))[0]).toMatchObject({ used: 2, resetMs: 500 });
      await at(3 * HOUR);
      expect(await storedTimes('s')).toEqual([T0 + 3 * HOUR]);
      expect((await limiter.peek(rules))[0]).toMatchObject({ used: 1, resetMs: HOUR });
    });

    it('never trims what a rule of the call can see, whatever the horizon says', async () => {
      const limiter = open({ horizonMs: () => HOUR });
      const rules = [hourly(100), daily(100)];
      for (const offset of [0, 5 * HOUR]) {
        ctx.now = T0 + offset;
        await limiter.reserve(rules, costs(rules, 1, false));
      }
      expect(await storedTimes('s')).toEqual([T0, T0 + 5 * HOUR]);
      expect((await limiter.peek(rules)).map((s) => s.used)).toEqual([1, 2]);
    });

    it('trims a long backlog a chunk (1,000 events) per write, exact at every step', async () => {
      const old = Array.from({ length: 2500 }, (_, i) => ({ ts: T0 + i, amount: 1 + (i % 3) }));
      await storeEvents('s', old);
      const limiter = open({ horizonMs: () => DAY });
      const rules = [daily(1_000_000)];
      ctx.now = T0 + DAY + 10_000; // every stored event is past the horizon
      const left: number[] = [];
      for (let i = 0; i < 4; i++) {
        const decision = await limiter.reserve(rules, costs(rules, 1, false));
        expect(decision.states[0]!.used).toBe(i + 1); // only this test's own new events
        left.push((await storedTimes('s')).filter((ts) => ts < T0 + DAY).length);
      }
      expect(left).toEqual([1500, 500, 0, 0]);
      ctx.now += 1; // the new events still count, and Retry-After sees them
      const full = await limiter.reserve([daily(4)], costs(rules, 1, false));
      expect(full).toMatchObject({ admitted: false, retryAfterMs: DAY - 1 });
    });
  });

  it('ends a hold at its expiry by itself, with no prune', async () => {
    const limiter = open({ holdTtlMs: 60_000 });
    const rules = [hourly(2)];
    await limiter.reserve(rules, costs(rules, 2, true));
    ctx.now = T0 + 59_999;
    expect((await limiter.peek(rules))[0]!.used).toBe(2);
    ctx.now = T0 + 60_000;
    expect((await limiter.peek(rules))[0]!.used).toBe(0);
    expect((await limiter.reserve(rules, costs(rules, 2, false))).admitted).toBe(true);
    expect(await limiter.prune(() => DAY)).toBe(0); // nothing left to sweep
  });

  it('prunes every series of its own prefix, in batches, and nothing of another prefix', async () => {
    const odd = uniquePrefix('glob[*?]\\');
    const other = new RedisLimiter({ url, prefix: odd, clock: ctx.clock });
    try {
      const mine = open({ prefix: `${ctx.redis!.prefix}x*` }); // a prefix with a glob character, over ours
      const series = Array.from({ length: 250 }, (_, i) => `key:${i}:requests`);
      for (const s of series) {
        await mine.reserve([hourly(5, s)], { [s]: { amount: 1, hold: false } });
        await other.reserve([hourly(5, s)], { [s]: { amount: 1, hold: false } });
      }
      await take([hourly(5)]); // the fixture's limiter: prefix without the x*, untouched by `mine`
      ctx.now = T0 + 2 * HOUR;
      expect(await mine.prune(() => HOUR)).toBe(250);
      expect(await mine.prune(() => HOUR)).toBe(0);
      expect(await other.prune(() => DAY)).toBe(0); // its events are younger than a day
      ctx.now = T0 + 30 * 60_000;
      expect((await other.peek([hourly(5, series[0]!)]))[0]!.used).toBe(1);
      expect(await storedTimes('s')).toEqual([T0]);
    } finally {
      await other.close();
      await deleteKeys(url, odd);
    }
  });

  it('counts calendar months (UTC) in the script exactly as monthBounds does', async () => {
    const month: LimitRule = { name: 'month', series: 'm', unit: 'usd', windowMs: 31 * DAY, calendarMonth: true, limit: 100 };
    const instants = [
      Date.UTC(1999, 11, 31, 23, 59, 59, 999), Date.UTC(2000, 1, 29, 12), Date.UTC(2024, 1, 29), Date.UTC(2100, 1, 28, 23, 59, 59, 999),
      Date.UTC(2100, 2, 1), Date.UTC(2027, 0, 1), Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2400, 1, 29, 6),
    ];
    let seed = 7;
    // From 1971 (a series' times start at 0, so times before 1970 would count at 0, as in SQLite).
    while (instants.length < 60) instants.push(Date.UTC(1971, 0, 1) + ((seed = (seed * 48271) % 2147483647) / 2147483647) * 400 * 365 * DAY);
    for (const [i, instant] of instants.entries()) {
      const t = Math.floor(instant);
      const { start } = monthBounds(t);
      const rule = { ...month, series: `m${i}` };
      // One event just before the month, one at its first millisecond: only the second is in it.
      for (const at of [start - 1, start]) {
        ctx.now = at;
        await ctx.limiter.reserve([], { [rule.series]: { amount: 1, hold: false } });
      }
      ctx.now = t;
      expect((await ctx.limiter.peek([rule]))[0]!.used, new Date(t).toISOString()).toBe(1);
    }
  });

  it('refuses a total that doubles could not hold exactly, and writes nothing', async () => {
    await storeEvents('s', [{ ts: T0 - 1000, amount: Number.MAX_SAFE_INTEGER - 10 }]);
    const count = (amount: number) => ctx.limiter.reserve([], { s: { amount, hold: false } });
    await expect(count(20)).rejects.toThrow(/PROXYGPT_TOTAL_OVERFLOW/);
    await expect(count(20)).rejects.not.toBeInstanceOf(LimiterUnavailable);
    await expect(ctx.limiter.reserve([], { s: { amount: 11, hold: true }, t: { amount: 1, hold: false } })).rejects.toThrow(/OVERFLOW/);
    expect(await storedTimes('s')).toEqual([T0 - 1000]);
    expect(await storedTimes('t')).toEqual([]); // all or nothing
    expect((await count(10)).admitted).toBe(true);
    expect((await ctx.limiter.peek([{ ...hourly(Number.MAX_SAFE_INTEGER), name: 'huge' }]))[0]!.used).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("settles what it stored under the reservation's id, not the caller's copy of it", async () => {
    const rules = [hourly(100)];
    const decision = await hold(rules, 30);
    await ctx.limiter.commit({ id: 'not-a-hold', held: { s: 30 } });
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(30);
    await ctx.limiter.release({ id: decision.reservation!.id, held: { s: 99 } });
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(0);
  });

  it('answers LimiterUnavailable once closed', async () => {
    const limiter = open();
    await limiter.ping();
    await limiter.close();
    await expect(limiter.reserve([hourly(1)], costs([hourly(1)], 1, false))).rejects.toBeInstanceOf(LimiterUnavailable);
    await expect(limiter.ping()).rejects.toBeInstanceOf(LimiterUnavailable);
  });
});
