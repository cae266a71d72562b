/**
 * Two Redis limiters on one prefix, as two gateway instances on one Redis, each with its own
 * connection: 200 concurrent reserves spread over both admit exactly the limit, for every limit
 * type (global requests per hour and per day, a key's requests, tokens and spend held as
 * estimates, a calendar month); both then report the same states; a hold taken on one instance
 * is settled on the other; and the holds of an instance that stops without settling them end by
 * themselves after the hold lifetime (injected clock), while a late commit still counts once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RedisLimiter } from '../../src/limits/redis.js';
import type { Decision, LimitRule, SeriesCost } from '../../src/limits/limiter.js';
import { DAY, HOUR, limiterFixture, REDIS_URL, T0 } from './limiter-helpers.js';

const N = 200;

interface Case {
  label: string;
  rules: LimitRule[];
  cost: Record<string, SeriesCost>;
  admits: number;
}

const CASES: Case[] = [
  {
    label: 'global requests per hour (counted at once)',
    rules: [{ name: 'hourly', series: 'global:requests', unit: 'requests', windowMs: HOUR, limit: 50 }],
    cost: { 'global:requests': { amount: 1, hold: false } },
    admits: 50,
  },
  {
    label: 'global requests per day, held until settled',
    rules: [{ name: 'daily', series: 'global:requests', unit: 'requests', windowMs: DAY, limit: 50 }],
    cost: { 'global:requests': { amount: 1, hold: true } },
    admits: 50,
  },
  {
    label: "a key's requests per hour and its token budget, estimates held (the budget is the tighter)",
    rules: [
      { name: 'key_requests_per_hour', series: 'key:k:requests', unit: 'requests', windowMs: HOUR, limit: 120 },
      { name: 'key_tokens_per_day', series: 'key:k:tokens', unit: 'tokens', windowMs: DAY, limit: 350 },
    ],
    cost: { 'key:k:requests': { amount: 1, hold: false }, 'key:k:tokens': { amount: 7, hold: true } },
    admits: 50,
  },
  {
    label: "a key's spend per calendar month and per day, estimates held",
    rules: [
      { name: 'key_usd_per_day', series: 'key:k:usd', unit: 'usd', windowMs: DAY, limit: 5_000_000 },
      { name: 'key_usd_per_month', series: 'key:k:usd', unit: 'usd', windowMs: 31 * DAY, calendarMonth: true, limit: 1_250_000 },
    ],
    cost: { 'key:k:usd': { amount: 25_000, hold: true } },
    admits: 50,
  },
];

describe.skipIf(REDIS_URL === null)('two Redis limiters on one prefix', () => {
  const { ctx } = limiterFixture('redis', { holdTtlMs: 60_000 });
  const others: RedisLimiter[] = [];
  afterEach(async () => {
    for (const l of others.splice(0)) await l.close();
  });
  /** A second instance: its own connection, the same Redis, prefix and clock. */
  const secondInstance = (holdTtlMs = 60_000) => {
    const limiter = new RedisLimiter({ url: REDIS_URL!, prefix: ctx.redis!.prefix, clock: ctx.clock, holdTtlMs });
    others.push(limiter);
    return limiter;
  };

  it.each(CASES)('admit exactly the limit of $admits out of 200 concurrent calls: $label', async ({ rules, cost, admits }) => {
    const a = ctx.limiter;
    const b = secondInstance();
    await Promise.all([a.peek(rules), b.peek(rules)]); // both connected and their scripts loaded
    // In waves of 20 (10 on each instance), each wave sent in its own turn: the two connections'
    // calls reach Redis interleaved, as two gateways' would.
    const pending: Promise<Decision>[] = [];
    for (let i = 0; i < N; i++) {
      pending.push((i % 2 === 0 ? a : b).reserve(rules, cost));
      if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve));
    }
    const decisions = await Promise.all(pending);
    expect(decisions.filter((d) => d.admitted)).toHaveLength(admits);
    for (const d of decisions.filter((d) => !d.admitted)) expect(d.retryAfterMs).toBeGreaterThan(0);
    const [fromA, fromB] = await Promise.all([a.peek(rules), b.peek(rules)]);
    expect(fromA).toEqual(fromB);
    for (const [i, rule] of rules.entries()) {
      const perCall = cost[rule.series]!.amount;
      expect(fromA[i]!.used).toBe(admits * perCall);
    }
  });

  it("settle each other's holds: committed on the other instance, counted once, at the actual amount", async () => {
    const rules: LimitRule[] = [{ name: 'tph', series: 'key:k:tokens', unit: 'tokens', windowMs: HOUR, limit: 1000 }];
    const a = ctx.limiter;
    const b = secondInstance();
    const held = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).reserve(rules, { 'key:k:tokens': { amount: 100, hold: true } })));
    expect(held.every((d) => d.admitted)).toBe(true);
    expect(new Set(held.map((d) => d.reservation!.id)).size).toBe(10); // ids unique across instances
    expect((await a.reserve(rules, { 'key:k:tokens': { amount: 1, hold: true } })).admitted).toBe(false);
    // Each reservation is settled by the instance that did not make it: 30 tokens each, twice over.
    await Promise.all(held.map((d, i) => (i % 2 === 0 ? b : a).commit(d.reservation!, { 'key:k:tokens': 30 })));
    await Promise.all(held.map((d, i) => (i % 2 === 0 ? a : b).commit(d.reservation!, { 'key:k:tokens': 30 })));
    expect((await b.peek(rules))[0]).toMatchObject({ used: 300, remaining: 700 });
  });

  it('let the holds of an instance that stopped without settling end after the hold lifetime', async () => {
    const rules: LimitRule[] = [{ name: 'tpd', series: 'key:k:tokens', unit: 'tokens', windowMs: DAY, limit: 100 }];
    const crashed = secondInstance();
    const survivor = ctx.limiter;
    const held = await crashed.reserve(rules, { 'key:k:tokens': { amount: 80, hold: true } });
    expect(held.admitted).toBe(true);
    await crashed.close(); // gone, holds unsettled
    ctx.now = T0 + 59_999;
    expect((await survivor.peek(rules))[0]!.used).toBe(80);
    expect((await survivor.reserve(rules, { 'key:k:tokens': { amount: 30, hold: true } })).admitted).toBe(false);
    ctx.now = T0 + 60_000;
    expect((await survivor.peek(rules))[0]!.used).toBe(0);
    const full = await survivor.reserve(rules, { 'key:k:tokens': { amount: 100, hold: true } });
    expect(full.admitted).toBe(true);
    // A settlement arriving late for the expired hold (its call outlived the hold) counts what the
    // call used, at commit time and once: the expired hold gave its room back, the use does not vanish.
    await survivor.commit(held.reservation!, { 'key:k:tokens': 70 });
    expect((await survivor.peek(rules))[0]!.used).toBe(170);
    await survivor.commit(held.reservation!, { 'key:k:tokens': 70 });
    expect((await survivor.peek(rules))[0]!.used).toBe(170);
  });
});
