/**
 * Shared by the limiter tests: a fresh limiter of either kind ('sqlite': SqliteLimiter,
 * 'memory': MemoryLimiter) on its own SQLite file for each test, with a clock the test sets
 * through `ctx.now` (T0 unless told otherwise, at the start of each test), rule builders, and
 * shorthands to reserve counted (`take`) or held (`hold`) amounts. `sync()` writes a memory
 * limiter's journal to the tables, for tests that read them directly (a no-op for SQLite).
 */
import { afterEach, beforeEach, expect } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { MemoryLimiter, type MemoryLimiterOptions } from '../../src/limits/memory.js';
import type { Clock, LimitRule, Limiter, RuleState, SeriesCost } from '../../src/limits/limiter.js';
import { tempDir } from '../helpers.js';

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = 1_700_000_000_000;

export type LimiterKind = 'sqlite' | 'memory';
export const KINDS = ['sqlite', 'memory'] as const satisfies readonly LimiterKind[];

export const hourly = (limit: number, series = 's'): LimitRule => ({ name: 'hourly', series, unit: 'requests', windowMs: HOUR, limit });
export const daily = (limit: number, series = 's'): LimitRule => ({ name: 'daily', series, unit: 'requests', windowMs: DAY, limit });

/** The same cost in every series the rules name. */
export const costs = (rules: LimitRule[], amount: number, held: boolean): Record<string, SeriesCost> =>
  Object.fromEntries(rules.map((r) => [r.series, { amount, hold: held }]));
export const byName = (states: RuleState[], name: string) => states.find((s) => s.name === name)!;

export interface LimiterOptions {
  holdTtlMs?: number;
  /** Memory limiter only. */
  memory?: MemoryLimiterOptions;
}

/** A limiter of `kind` on `db`. */
export function createLimiter(kind: LimiterKind, db: SqliteDatabase, clock: Clock, options: LimiterOptions = {}): Limiter {
  return kind === 'sqlite'
    ? new SqliteLimiter(db, clock, options.holdTtlMs)
    : new MemoryLimiter(db, clock, options.holdTtlMs, options.memory);
}

/** Writes a memory limiter's journal to its tables; nothing to do for a SQLite limiter. */
export function flushJournal(limiter: Limiter): void {
  if (limiter instanceof MemoryLimiter) limiter.flush();
}

/** Every row of the limiter tables a limiter writes, in a stable order. */
export function tableRows(db: SqliteDatabase) {
  return {
    events: db.prepare('SELECT series, cum, ts FROM limit_events ORDER BY series, cum').all(),
    series: db.prepare('SELECT series, cum, last_ts, held, base_cum FROM limit_series ORDER BY series').all(),
  };
}

export interface LimiterContext {
  kind: LimiterKind;
  dir: string;
  /** The database file's path. */
  file: string;
  db: SqliteDatabase;
  /** What `clock` returns; tests move it. */
  now: number;
  clock: () => number;
  /** Closed after the test; replace it with `reopen` rather than by assignment. */
  limiter: Limiter;
}

export interface FixtureOptions extends LimiterOptions {
  /** The clock at the start of each test (T0 by default). */
  start?: number;
}

/** Call once per kind (inside its describe): registers the per-test set-up and clean-up. */
export function limiterFixture(kind: LimiterKind, fixtureOptions: FixtureOptions = {}) {
  const start = fixtureOptions.start ?? T0;
  const ctx = { kind, now: start, clock: () => ctx.now } as LimiterContext;

  beforeEach(() => {
    ctx.dir = tempDir();
    ctx.file = join(ctx.dir, 'limits.db');
    ctx.db = openSqlite(ctx.file);
    ctx.now = start;
    ctx.limiter = createLimiter(kind, ctx.db, ctx.clock, fixtureOptions);
  });

  afterEach(async () => {
    await ctx.limiter.close();
    ctx.db.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  /** Closes the limiter (a memory limiter's lease is exclusive) and starts a new one of the same kind on the same file. */
  async function reopen(options: LimiterOptions = fixtureOptions): Promise<Limiter> {
    await ctx.limiter.close();
    ctx.limiter = createLimiter(kind, ctx.db, ctx.clock, options);
    return ctx.limiter;
  }

  const sync = () => flushJournal(ctx.limiter);
  const take = (rules: LimitRule[], cost = 1) => ctx.limiter.reserve(rules, costs(rules, cost, false));
  const hold = (rules: LimitRule[], cost = 1) => ctx.limiter.reserve(rules, costs(rules, cost, true));

  /** Reserve one at each of these times (ms after the start), expecting admission. */
  async function fillAt(rules: LimitRule[], offsets: number[]): Promise<void> {
    for (const offset of offsets) {
      ctx.now = start + offset;
      const decision = await take(rules);
      expect(decision.admitted).toBe(true);
    }
  }

  return { ctx, take, hold, fillAt, sync, reopen };
}
