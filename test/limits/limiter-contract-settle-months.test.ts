/**
 * Limiter contract beyond plain request counting: every limiter (SQLite, in-memory, a cluster
 * worker's asking an in-memory one over IPC, and Redis) with an injected clock reserve
 * several series in one step (requests, tokens, spend), settle holds to the actual amount, count
 * calendar-month windows, and prune with horizons chosen per series. Also the pure helpers behind
 * them (month bounds, per-key rules).
 */
import { describe, expect, it } from 'vitest';
import { monthBounds, type LimitRule } from '../../src/limits/limiter.js';
import { horizonOf, keyRules, keySeries, MONTH_MS } from '../../src/limits/rules.js';
import { DAY, HOUR, KINDS, limiterFixture } from './limiter-helpers.js';

const tokensPerHour = (limit: number): LimitRule => ({ name: 'tph', series: 'k:tokens', unit: 'tokens', windowMs: HOUR, limit });
const monthly = (limit: number): LimitRule => ({ name: 'usd_month', series: 'k:usd', unit: 'usd', windowMs: MONTH_MS, calendarMonth: true, limit });
const usdDaily = (limit: number): LimitRule => ({ name: 'usd_day', series: 'k:usd', unit: 'usd', windowMs: DAY, limit });

describe.each(KINDS)('%s limiter', (kind) => {
  const { ctx, prune } = limiterFixture(kind, { start: Date.UTC(2026, 0, 31, 23, 0, 0) }); // one hour before February

  describe('reserve, then settle to the actual amount', () => {
    it('holds the estimate while in flight and counts the actual amount at commit', async () => {
      const rules = [tokensPerHour(1000)];
      const a = await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 600, hold: true } });
      expect(a.admitted).toBe(true);
      // The estimate is held: a second estimate of 600 does not fit beside it.
      const b = await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 600, hold: true } });
      expect(b.admitted).toBe(false);
      await ctx.limiter.commit(a.reservation!, { 'k:tokens': 150 });
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 150, remaining: 850 });
      const c = await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 600, hold: true } });
      expect(c.admitted).toBe(true);
      // An actual amount above the estimate is counted in full (the budget may overshoot by the error).
      await ctx.limiter.commit(c.reservation!, { 'k:tokens': 900 });
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1050, remaining: 0 });
    });

    it('committing 0 releases, and committing twice counts once', async () => {
      const rules = [tokensPerHour(100)];
      const a = await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 80, hold: true } });
      await ctx.limiter.commit(a.reservation!, { 'k:tokens': 0 });
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(0);
      const b = await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 80, hold: true } });
      await ctx.limiter.commit(b.reservation!, { 'k:tokens': 30 });
      await ctx.limiter.commit(b.reservation!, { 'k:tokens': 30 });
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(30);
    });

    it('reserves several series in one atomic step: all or nothing', async () => {
      const rules: LimitRule[] = [
        { name: 'rph', series: 'k:requests', unit: 'requests', windowMs: HOUR, limit: 10 },
        tokensPerHour(100),
      ];
      const costs = (tokens: number) => ({ 'k:requests': { amount: 1, hold: false }, 'k:tokens': { amount: tokens, hold: true } });
      const refused = await ctx.limiter.reserve(rules, costs(101));
      expect(refused.admitted).toBe(false);
      expect(refused.blockedBy).toBe('tph');
      expect(refused.retryAfterMs).toBeUndefined(); // 101 tokens never fit in 100
      // Nothing was taken from the request series by the refused call.
      expect((await ctx.limiter.peek(rules)).map((s) => s.used)).toEqual([0, 0]);
      const ok = await ctx.limiter.reserve(rules, costs(40));
      expect(ok.admitted).toBe(true);
      expect(ok.reservation!.held).toEqual({ 'k:tokens': 40 });
      expect((await ctx.limiter.peek(rules)).map((s) => s.used)).toEqual([1, 40]);
    });

    it('rejects non-integer or negative amounts, naming which', async () => {
      await expect(ctx.limiter.reserve([tokensPerHour(10)], { 'k:tokens': { amount: 1.5, hold: true } })).rejects.toThrow(
        new RangeError('costs must be non-negative integers'),
      );
      const ok = await ctx.limiter.reserve([tokensPerHour(10)], { 'k:tokens': { amount: 1, hold: true } });
      await expect(ctx.limiter.commit(ok.reservation!, { 'k:tokens': -1 })).rejects.toThrow(new RangeError('actual amounts must be non-negative integers'));
    });
  });

  describe('calendar-month windows', () => {
    it('counts from the first of the month (UTC) and resets exactly at the next one', async () => {
      const rules = [monthly(1_000), usdDaily(10_000)];
      const spend = (amount: number) => ctx.limiter.reserve(rules, { 'k:usd': { amount, hold: false } });
      expect((await spend(900)).admitted).toBe(true);
      const refused = await spend(200);
      expect(refused.admitted).toBe(false);
      expect(refused.blockedBy).toBe('usd_month');
      const february = Date.UTC(2026, 1, 1);
      expect(refused.retryAfterMs).toBe(february - ctx.now);
      expect(refused.states[0]!.resetMs).toBe(february - ctx.now);

      ctx.now = february - 1;
      expect((await spend(200)).admitted).toBe(false);
      ctx.now = february;
      const [month, day] = await ctx.limiter.peek(rules);
      expect(month!.used).toBe(0); // a new month
      expect(day!.used).toBe(900); // the rolling day still sees January's spend
      expect((await spend(200)).admitted).toBe(true);
    });
  });

  describe('prune horizons per series', () => {
    it('keeps spend events for a month but request events only for the longest request window', async () => {
      const requests: LimitRule[] = [{ name: 'rpd', series: 'k:requests', unit: 'requests', windowMs: DAY, limit: 100 }];
      const spend = [monthly(1e9)];
      ctx.now = Date.UTC(2026, 2, 1);
      await ctx.limiter.reserve(requests, { 'k:requests': { amount: 1, hold: false } });
      await ctx.limiter.reserve(spend, { 'k:usd': { amount: 5, hold: false } });
      ctx.now += 2 * DAY;
      const removed = await prune((series) => horizonOf(series, DAY));
      expect(removed).toBe(1); // the request event; the spend event is still inside its month
      expect((await ctx.limiter.peek(spend))[0]!.used).toBe(5);
      expect((await ctx.limiter.peek(requests))[0]!.used).toBe(0);
    });
  });
});

describe('limit helpers', () => {
  it('finds month bounds in UTC, also across years', () => {
    expect(monthBounds(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toEqual({ start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) });
    expect(monthBounds(Date.UTC(2028, 1, 29, 12))).toEqual({ start: Date.UTC(2028, 1, 1), end: Date.UTC(2028, 2, 1) });
  });

  it('names per-key series and rules consistently', () => {
    const series = keySeries('key_abc');
    const rules = keyRules('key_abc', { requestsPerHour: 5, tokensPerDay: 100, usdPerDay: 2.5, usdPerMonth: 10 });
    expect(rules.map((r) => [r.name, r.series, r.limit])).toEqual([
      ['key_requests_per_hour', series.requests, 5],
      ['key_tokens_per_day', series.tokens, 100],
      ['key_usd_per_day', series.usd, 2_500_000],
      ['key_usd_per_month', series.usd, 10_000_000],
    ]);
    expect(horizonOf(series.usd, DAY)).toBeGreaterThan(31 * DAY);
    expect(horizonOf(series.tokens, DAY)).toBe(DAY);
  });
});
