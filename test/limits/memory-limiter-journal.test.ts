/**
 * What the in-memory limiter writes to its journal (the limit_events table), on a real SQLite
 * file with an injected clock: one row per series and busy millisecond, however many calls it
 * held (the README's "a row per busy millisecond instead of one per call"), a row per distinct
 * millisecond, and no row at all for an amount of zero (a call that settled to no tokens).
 */
import { describe, expect, it } from 'vitest';
import type { LimitRule } from '../../src/limits/limiter.js';
import { HOUR, limiterFixture, T0 } from './limiter-helpers.js';

const rules: LimitRule[] = [{ name: 'tph', series: 'k:tokens', unit: 'tokens', windowMs: HOUR, limit: 1_000_000 }];

describe('the memory limiter journal', () => {
  const { ctx, sync } = limiterFixture('memory', { memory: { flushMs: 3_600_000 } });
  const rows = () => ctx.db.prepare('SELECT cum, ts FROM limit_events WHERE series = ? ORDER BY ts').all('k:tokens') as { cum: number; ts: number }[];

  it('writes one row per busy millisecond, with the running total', async () => {
    for (let i = 0; i < 50; i++) expect((await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 2, hold: false } })).admitted).toBe(true);
    ctx.now = T0 + 1;
    for (let i = 0; i < 3; i++) await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 5, hold: false } });
    await sync();
    expect(rows()).toEqual([
      { cum: 100, ts: T0 },
      { cum: 115, ts: T0 + 1 },
    ]);
  });

  it('writes nothing for an amount of zero, held and settled to zero or counted at once', async () => {
    const held = await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 40, hold: true } });
    ctx.now = T0 + 5;
    await ctx.limiter.commit(held.reservation!, { 'k:tokens': 0 });
    ctx.now = T0 + 6;
    await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 0, hold: false } });
    await sync();
    expect(rows()).toEqual([]);
    ctx.now = T0 + 7;
    await ctx.limiter.reserve(rules, { 'k:tokens': { amount: 3, hold: false } });
    await sync();
    expect(rows()).toEqual([{ cum: 3, ts: T0 + 7 }]);
  });
});
