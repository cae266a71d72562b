/**
 * Limiter contract, late settlement: a hold that expires (its call outlived `holdTtlMs`, e.g. a
 * long stream) stops counting toward the windows, but the limiter remembers the reservation for
 * EXPIRED_HOLD_MEMORY_MS after the expiry (at most EXPIRED_HOLDS_KEPT per series), so a late
 * `commit` still counts what the call used, at commit time, once; a late `release` only forgets
 * it. For every limiter (SQLite, in-memory, a cluster worker's over IPC, Redis).
 */
import { describe, expect, it } from 'vitest';
import { EXPIRED_HOLD_MEMORY_MS, EXPIRED_HOLDS_KEPT, type LimitRule, type Reservation } from '../../src/limits/limiter.js';
import { CONCURRENT_WINDOW_MS } from '../../src/limits/rules.js';
import { DAY, HOUR, KINDS, limiterFixture, T0 } from './limiter-helpers.js';

const TTL = 60_000;
const tokensPerDay = (limit = 1000): LimitRule => ({ name: 'tokens_per_day', series: 'tok', unit: 'tokens', windowMs: DAY, limit });
const requestsPerHour = (limit = 10): LimitRule => ({ name: 'requests_per_hour', series: 'req', unit: 'requests', windowMs: HOUR, limit });
const cap = (limit: number): LimitRule => ({ name: 'concurrent', series: 'c', unit: 'requests', windowMs: CONCURRENT_WINDOW_MS, limit });

describe.each(KINDS)('%s limiter', (kind) => {
  const { ctx, take, reopen, prune } = limiterFixture(kind, { holdTtlMs: TTL });
  const used = async (rules: LimitRule[]) => (await ctx.limiter.peek(rules)).map((s) => s.used);
  const holdTokens = async (amount: number, rules: LimitRule[] = [tokensPerDay()]): Promise<Reservation> => {
    const decision = await ctx.limiter.reserve(rules, { tok: { amount, hold: true } });
    expect(decision.admitted).toBe(true);
    return decision.reservation!;
  };

  it('counts the actual amount of a commit that comes after its hold expired and was swept, at commit time', async () => {
    const rules = [tokensPerDay()];
    const reservation = await holdTokens(100);
    expect(await used(rules)).toEqual([100]);
    ctx.now = T0 + 2 * TTL;
    await prune(() => DAY);
    expect(await used(rules)).toEqual([0]); // expired: no longer in the window
    await ctx.limiter.commit(reservation, { tok: 50 });
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 50, remaining: 950, resetMs: DAY });
    // Counted from the commit (T0 + 2 TTL), not from the reservation.
    ctx.now = T0 + 2 * TTL + DAY - 1;
    expect(await used(rules)).toEqual([50]);
    ctx.now = T0 + 2 * TTL + DAY;
    expect(await used(rules)).toEqual([0]);
  });

  it('counts the held amount of a series the late commit names no actual for', async () => {
    const rules = [tokensPerDay(), requestsPerHour()];
    const decision = await ctx.limiter.reserve(rules, { tok: { amount: 100, hold: true }, req: { amount: 1, hold: true } });
    ctx.now = T0 + TTL + 1;
    await prune(() => DAY);
    expect(await used(rules)).toEqual([0, 0]);
    await ctx.limiter.commit(decision.reservation!, { tok: 70 });
    expect(await used(rules)).toEqual([70, 1]);
    // With no actual amounts at all: the held amounts.
    const second = await ctx.limiter.reserve(rules, { tok: { amount: 30, hold: true }, req: { amount: 1, hold: true } });
    ctx.now += TTL;
    await prune(() => DAY);
    await ctx.limiter.commit(second.reservation!);
    expect(await used(rules)).toEqual([100, 2]);
  });

  it('counts a late commit once: a second commit or a release after it changes nothing', async () => {
    const rules = [tokensPerDay()];
    const reservation = await holdTokens(100);
    ctx.now = T0 + 2 * TTL;
    await prune(() => DAY);
    await ctx.limiter.commit(reservation, { tok: 40 });
    await ctx.limiter.commit(reservation, { tok: 40 });
    await ctx.limiter.commit(reservation);
    await ctx.limiter.release(reservation);
    expect(await used(rules)).toEqual([40]);
    // Nor does the sweep bring it back.
    await prune(() => DAY);
    await ctx.limiter.commit(reservation, { tok: 40 });
    expect(await used(rules)).toEqual([40]);
  });

  it('counts nothing for a late release, nor for a commit after it', async () => {
    const rules = [tokensPerDay()];
    const reservation = await holdTokens(100);
    ctx.now = T0 + 2 * TTL;
    await prune(() => DAY);
    await ctx.limiter.release(reservation);
    expect(await used(rules)).toEqual([0]);
    await ctx.limiter.commit(reservation, { tok: 50 });
    expect(await used(rules)).toEqual([0]);
  });

  it('gives the room of an expired hold back before it is committed, and counts the late commit even past the limit', async () => {
    const rules = [tokensPerDay(100)];
    const reservation = await holdTokens(100, rules);
    expect((await take(rules, 1)).admitted).toBe(false);
    ctx.now = T0 + TTL;
    await prune(() => DAY);
    expect((await take(rules, 100)).admitted).toBe(true); // the expired hold no longer takes room
    ctx.now += 1000;
    await ctx.limiter.commit(reservation, { tok: 60 }); // a commit is never refused
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 160, remaining: 0 });
  });

  it('lets one hold of a series expire while the others stay, and settles each on its own', async () => {
    const rules = [tokensPerDay()];
    const early = await holdTokens(100);
    ctx.now = T0 + 90_000;
    const later = await holdTokens(30); // expires at T0 + 150 s
    ctx.now = T0 + 120_000;
    await prune(() => DAY);
    expect(await used(rules)).toEqual([30]);
    await ctx.limiter.commit(early, { tok: 50 });
    expect(await used(rules)).toEqual([80]);
    await ctx.limiter.commit(later, { tok: 20 });
    expect(await used(rules)).toEqual([70]);
    // The later hold was settled in time: nothing of it is left to expire or to count again.
    ctx.now = T0 + 10 * TTL;
    await prune(() => DAY);
    await ctx.limiter.commit(later, { tok: 20 });
    expect(await used(rules)).toEqual([70]);
  });

  it('counts nothing more in a concurrency cap when a late commit gives its slot 0, and frees no slot another call holds', async () => {
    const rules = [cap(1), tokensPerDay()];
    const first = await ctx.limiter.reserve(rules, { c: { amount: 1, hold: true }, tok: { amount: 100, hold: true } });
    expect(first.admitted).toBe(true);
    ctx.now = T0 + 2 * TTL;
    await prune(() => DAY);
    const second = await ctx.limiter.reserve(rules, { c: { amount: 1, hold: true }, tok: { amount: 10, hold: true } });
    expect(second.admitted).toBe(true); // the expired slot is free again
    await ctx.limiter.commit(first.reservation!, { c: 0, tok: 50 });
    expect(await used(rules)).toEqual([1, 60]); // the second call still holds its slot and its 10
    expect((await ctx.limiter.reserve(rules, { c: { amount: 1, hold: true } })).admitted).toBe(false);
    await ctx.limiter.commit(second.reservation!, { c: 0, tok: 5 });
    expect(await used(rules)).toEqual([0, 55]);
  });

  it('counts a late commit without a sweep in between (the hold expired, nobody swept it yet)', async () => {
    const rules = [tokensPerDay()];
    const reservation = await holdTokens(100);
    ctx.now = T0 + 2 * TTL;
    await ctx.limiter.commit(reservation, { tok: 50 });
    expect(await used(rules)).toEqual([50]);
  });

  describe('what is remembered, and for how long', () => {
    it(`remembers an expired reservation for ${EXPIRED_HOLD_MEMORY_MS / HOUR} h after its expiry, swept or not`, async () => {
      const rules = [tokensPerDay(10_000)];
      const expiry = T0 + TTL;
      const [justInTime, tooLate, sweptAway] = [await holdTokens(100), await holdTokens(100), await holdTokens(100)];
      ctx.now = expiry;
      await prune(() => DAY);
      expect(await used(rules)).toEqual([0]);

      ctx.now = expiry + EXPIRED_HOLD_MEMORY_MS - 1;
      await ctx.limiter.commit(justInTime, { tok: 7 });
      expect(await used(rules)).toEqual([7]);

      ctx.now = expiry + EXPIRED_HOLD_MEMORY_MS;
      await ctx.limiter.commit(tooLate, { tok: 11 }); // not swept since: forgotten all the same
      expect(await used(rules)).toEqual([7]);
      await prune(() => DAY); // the sweep forgets the rest
      await ctx.limiter.commit(sweptAway, { tok: 13 });
      expect(await used(rules)).toEqual([7]);
    });

    it(`remembers at most ${EXPIRED_HOLDS_KEPT} expired reservations of a series, forgetting the oldest first`, async () => {
      const rules = [tokensPerDay(10 * EXPIRED_HOLDS_KEPT)];
      const oldest = await holdTokens(1, rules);
      ctx.now = T0 + 1;
      const decisions = [];
      // In batches, so no call waits behind thousands of others (Redis answers within a timeout).
      for (let i = 0; i < EXPIRED_HOLDS_KEPT; i += 500) {
        decisions.push(...(await Promise.all(Array.from({ length: Math.min(500, EXPIRED_HOLDS_KEPT - i) }, () => ctx.limiter.reserve(rules, { tok: { amount: 1, hold: true } })))));
      }
      expect(decisions).toHaveLength(EXPIRED_HOLDS_KEPT);
      expect(decisions.every((d) => d.admitted)).toBe(true);
      expect(await used(rules)).toEqual([EXPIRED_HOLDS_KEPT + 1]);
      ctx.now = T0 + 2 * TTL;
      await prune(() => DAY);
      expect(await used(rules)).toEqual([0]);
      await ctx.limiter.commit(oldest, { tok: 5 }); // one too many: forgotten
      expect(await used(rules)).toEqual([0]);
      await ctx.limiter.commit(decisions[0]!.reservation!, { tok: 3 });
      await ctx.limiter.commit(decisions.at(-1)!.reservation!, { tok: 4 });
      expect(await used(rules)).toEqual([7]);
    });

    it(kind === 'sqlite' || kind === 'redis' ? 'remembers it across a restart (it is in the database)' : 'forgets it on a restart: a new limiter counts nothing for an id of the old one', async () => {
      const rules = [tokensPerDay()];
      const reservation = await holdTokens(100);
      ctx.now = T0 + 2 * TTL;
      await prune(() => DAY);
      await reopen();
      await ctx.limiter.commit(reservation, { tok: 50 });
      expect(await used(rules)).toEqual([kind === 'sqlite' || kind === 'redis' ? 50 : 0]);
    });
  });
});
