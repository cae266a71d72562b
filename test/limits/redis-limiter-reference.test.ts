/**
 * The Redis limiter against the SQLite limiter as the reference, on one injected clock: a few
 * thousand random operations (reserves counted and held over four series with rolling and
 * calendar-month rules, commits with and without actual amounts, double commits, releases,
 * peeks, prunes) with the clock standing still, creeping, jumping hours and days across month
 * ends, and now and then going back. Every decision (admitted, states, blockedBy, Retry-After,
 * held amounts) and every peek must be the same. Holds never expire here (the two limiters drop
 * expired holds at different moments by design: Redis at once, SQLite at its next prune).
 */
import { describe, expect, it } from 'vitest';
import type { Decision, LimitRule, Reservation, SeriesCost } from '../../src/limits/limiter.js';
import { DAY, generator, HOUR, limiterFixture, REDIS_URL, referenceLimiter } from './limiter-helpers.js';

const NEVER = 10_000_000_000_000; // a hold lifetime no test reaches (~300 years)
const MINUTE = 60_000;

const RULES: LimitRule[] = [
  { name: 'global_hourly', series: 'g', unit: 'requests', windowMs: HOUR, limit: 25 },
  { name: 'global_daily', series: 'g', unit: 'requests', windowMs: DAY, limit: 80 },
  { name: 'key_ten_minutes', series: 'k:req', unit: 'requests', windowMs: 10 * MINUTE, limit: 6 },
  { name: 'key_tokens_hourly', series: 'k:tok', unit: 'tokens', windowMs: HOUR, limit: 900 },
  { name: 'key_tokens_daily', series: 'k:tok', unit: 'tokens', windowMs: DAY, limit: 4000 },
  { name: 'key_usd_daily', series: 'k:usd', unit: 'usd', windowMs: DAY, limit: 9_000_000 },
  { name: 'key_usd_month', series: 'k:usd', unit: 'usd', windowMs: 31 * DAY, calendarMonth: true, limit: 40_000_000 },
];

/** A decision without its reservation id (each limiter makes its own). */
function comparable(d: Decision) {
  return { admitted: d.admitted, states: d.states, blockedBy: d.blockedBy, retryAfterMs: d.retryAfterMs, held: d.reservation?.held };
}

describe.skipIf(REDIS_URL === null)('Redis limiter compared with the SQLite limiter', () => {
  const { ctx } = limiterFixture('redis', { start: Date.UTC(2028, 1, 27, 20), holdTtlMs: NEVER }); // before a leap day
  const ref = referenceLimiter(ctx, { holdTtlMs: NEVER });

  it.each([1, 2, 3])('gives the same answers over 2,500 random operations (seed %i)', async (seed) => {
    const rand = generator(seed);
    const pending: { mine: Reservation; theirs: Reservation }[] = [];
    const stats = { admitted: 0, refused: 0, never: 0, commits: 0, releases: 0, back: 0 };

    const moveClock = () => {
      const r = rand.next();
      if (r < 0.35) return; // the same millisecond
      if (r < 0.65) ctx.now += 1 + rand.int(2000);
      else if (r < 0.87) ctx.now += MINUTE + rand.int(20 * MINUTE);
      else if (r < 0.95) ctx.now += HOUR + rand.int(6 * HOUR);
      else if (r < 0.97) ctx.now += DAY + rand.int(3 * DAY);
      else {
        ctx.now -= 1 + rand.int(5000); // a clock that goes back
        stats.back++;
      }
    };

    const randomRules = () => RULES.filter(() => rand.chance(0.45));
    const randomCosts = (): Record<string, SeriesCost> => {
      const costs: Record<string, SeriesCost> = {};
      if (rand.chance(0.8)) costs.g = { amount: 1, hold: rand.chance(0.3) };
      if (rand.chance(0.6)) costs['k:req'] = { amount: 1, hold: rand.chance(0.5) };
      if (rand.chance(0.6)) costs['k:tok'] = { amount: rand.chance(0.03) ? 5000 : rand.int(400), hold: rand.chance(0.7) };
      if (rand.chance(0.5)) costs['k:usd'] = { amount: rand.int(3_000_000), hold: rand.chance(0.7) };
      if (rand.chance(0.05)) costs['no-rule'] = { amount: 1 + rand.int(5), hold: rand.chance(0.5) };
      return costs;
    };

    for (let step = 0; step < 2500; step++) {
      moveClock();
      const op = rand.next();
      if (op < 0.55 || pending.length === 0) {
        const rules = randomRules();
        const costs = randomCosts();
        const [mine, theirs] = await Promise.all([ctx.limiter.reserve(rules, costs), ref.limiter.reserve(rules, costs)]);
        expect(comparable(mine), `reserve at step ${step}`).toEqual(comparable(theirs));
        if (mine.admitted) {
          stats.admitted++;
          if (Object.keys(mine.reservation!.held).length > 0) pending.push({ mine: mine.reservation!, theirs: theirs.reservation! });
        } else if (mine.retryAfterMs === undefined) stats.never++;
        else stats.refused++;
      } else if (op < 0.75) {
        const i = rand.int(pending.length);
        const { mine, theirs } = pending[i]!;
        // The actual amount: the estimate (none given), less, nothing, or more.
        const actual: Record<string, number> = {};
        for (const [series, held] of Object.entries(mine.held)) {
          const r = rand.next();
          if (r < 0.25) continue;
          actual[series] = r < 0.7 ? rand.int(held + 1) : r < 0.8 ? 0 : held + rand.int(200);
        }
        await Promise.all([ctx.limiter.commit(mine, actual), ref.limiter.commit(theirs, actual)]);
        stats.commits++;
        if (rand.chance(0.8)) pending.splice(i, 1); // else it is committed (or released) again later: a no-op
      } else if (op < 0.85) {
        const i = rand.int(pending.length);
        const { mine, theirs } = pending[i]!;
        await Promise.all([ctx.limiter.release(mine), ref.limiter.release(theirs)]);
        stats.releases++;
        if (rand.chance(0.8)) pending.splice(i, 1);
      } else if (op < 0.99) {
        const rules = rand.chance(0.5) ? RULES : randomRules();
        expect(await ctx.limiter.peek(rules), `peek at step ${step}`).toEqual(await ref.limiter.peek(rules));
      } else {
        // Both prune what no rule can see any more; the answers must not change.
        const horizon = () => 32 * DAY;
        await Promise.all([ctx.limiter.prune(horizon), ref.limiter.prune(horizon)]);
        expect(await ctx.limiter.peek(RULES), `peek after prune at step ${step}`).toEqual(await ref.limiter.peek(RULES));
      }
    }
    expect(await ctx.limiter.peek(RULES)).toEqual(await ref.limiter.peek(RULES));
    // The walk went through every kind of answer (or it compared less than it seems).
    expect(stats.admitted).toBeGreaterThan(300);
    expect(stats.refused).toBeGreaterThan(100);
    expect(stats.never).toBeGreaterThan(0);
    expect(stats.commits).toBeGreaterThan(100);
    expect(stats.releases).toBeGreaterThan(50);
    expect(stats.back).toBeGreaterThan(10);
    expect(ctx.now - Date.UTC(2028, 1, 27, 20)).toBeGreaterThan(35 * DAY); // across several month ends
  });
});
