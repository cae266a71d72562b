/**
 * Shared by the SqliteLimiter tests: a fresh limiter on its own SQLite file for each test, with a
 * clock the test sets through `ctx.now` (T0 at the start of each test), rule builders, and
 * shorthands to reserve counted (`take`) or held (`hold`) amounts.
 */
import { afterEach, beforeEach, expect } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import type { LimitRule, RuleState, SeriesCost } from '../../src/limits/limiter.js';
import { tempDir } from '../helpers.js';

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = 1_700_000_000_000;

export const hourly = (limit: number, series = 's'): LimitRule => ({ name: 'hourly', series, unit: 'requests', windowMs: HOUR, limit });
export const daily = (limit: number, series = 's'): LimitRule => ({ name: 'daily', series, unit: 'requests', windowMs: DAY, limit });

/** The same cost in every series the rules name. */
export const costs = (rules: LimitRule[], amount: number, held: boolean): Record<string, SeriesCost> =>
  Object.fromEntries(rules.map((r) => [r.series, { amount, hold: held }]));
export const byName = (states: RuleState[], name: string) => states.find((s) => s.name === name)!;

export interface LimiterContext {
  dir: string;
  db: SqliteDatabase;
  /** What `clock` returns; tests move it. */
  now: number;
  clock: () => number;
  /** Closed after the test (a test may replace it with one of its own). */
  limiter: SqliteLimiter;
}

/** Call once at the top of a test file: registers the per-test set-up and clean-up. */
export function limiterFixture() {
  const ctx = { now: T0, clock: () => ctx.now } as LimiterContext;

  beforeEach(() => {
    ctx.dir = tempDir();
    ctx.db = openSqlite(join(ctx.dir, 'limits.db'));
    ctx.now = T0;
    ctx.limiter = new SqliteLimiter(ctx.db, ctx.clock);
  });

  afterEach(async () => {
    await ctx.limiter.close();
    ctx.db.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  const take = (rules: LimitRule[], cost = 1) => ctx.limiter.reserve(rules, costs(rules, cost, false));
  const hold = (rules: LimitRule[], cost = 1) => ctx.limiter.reserve(rules, costs(rules, cost, true));

  /** Reserve one at each of these times (ms after T0), expecting admission. */
  async function fillAt(rules: LimitRule[], offsets: number[]): Promise<void> {
    for (const offset of offsets) {
      ctx.now = T0 + offset;
      const decision = await take(rules);
      expect(decision.admitted).toBe(true);
    }
  }

  return { ctx, take, hold, fillAt };
}
