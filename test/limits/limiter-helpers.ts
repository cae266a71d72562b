/**
 * Shared by the limiter tests: a fresh limiter of any kind (see limiter-backends.ts; 'redis' only
 * when the test Redis answers, see test/support/redis.ts) on its own SQLite file (and, for
 * 'redis', its own key prefix, deleted after) for each test, with a clock the test sets through
 * `ctx.now` (T0 unless told otherwise, at the start of each test), rule builders, and shorthands
 * to reserve counted (`take`) or held (`hold`) amounts. What only a backend can tell comes through
 * backend-neutral helpers: `storedTimes(series)` (the events it keeps) and `storeEvents`
 * (many events put in at once). `sync()` writes a memory limiter's journal (for 'cluster': the
 * primary's) to the tables, for the memory limiter's own tests; `prune()` prunes where the kind
 * prunes (for 'cluster': the primary's limiter, as the primary does on its timer).
 */
import { afterEach, beforeEach, expect } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import type { LimitRule, Limiter, RuleState, SeriesCost } from '../../src/limits/limiter.js';
import { tempDir } from '../helpers.js';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';
import {
  closeLimiter,
  createLimiter,
  decidingLimiter,
  flushJournal,
  seedEvents,
  storedEventTimes,
  type Backing,
  type LimiterKind,
  type LimiterOptions,
  type SeedEvent,
} from './limiter-backends.js';

export { createClusterLimiter, type ClusterParts, type LimiterKind, type LimiterOptions } from './limiter-backends.js';

/** The test Redis, or null when it is unreachable outside CI (the Redis kind is then skipped). */
export const REDIS_URL = await testRedisUrl();

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = 1_700_000_000_000;

/** Every limiter kind the contract suite runs against. */
export const KINDS: readonly LimiterKind[] = REDIS_URL === null ? ['sqlite', 'memory', 'cluster'] : ['sqlite', 'memory', 'cluster', 'redis'];

export const hourly = (limit: number, series = 's'): LimitRule => ({ name: 'hourly', series, unit: 'requests', windowMs: HOUR, limit });
export const daily = (limit: number, series = 's'): LimitRule => ({ name: 'daily', series, unit: 'requests', windowMs: DAY, limit });

/** The same cost in every series the rules name. */
export const costs = (rules: LimitRule[], amount: number, held: boolean): Record<string, SeriesCost> =>
  Object.fromEntries(rules.map((r) => [r.series, { amount, hold: held }]));
export const byName = (states: RuleState[], name: string) => states.find((s) => s.name === name)!;

export interface LimiterContext {
  kind: LimiterKind;
  dir: string;
  /** The database file's path. */
  file: string;
  db: SqliteDatabase;
  /** 'redis' only: the Redis and the key prefix of this test. */
  redis: { url: string; prefix: string } | undefined;
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
  const backing = (): Backing => ({ db: ctx.db, redis: ctx.redis });

  beforeEach(() => {
    ctx.dir = tempDir();
    ctx.file = join(ctx.dir, 'limits.db');
    ctx.db = openSqlite(ctx.file);
    ctx.redis = kind === 'redis' ? { url: REDIS_URL!, prefix: uniquePrefix('limiter') } : undefined;
    ctx.now = start;
    ctx.limiter = createLimiter(kind, backing(), ctx.clock, fixtureOptions);
  });

  afterEach(async () => {
    await closeLimiter(ctx.limiter);
    ctx.db.close();
    rmSync(ctx.dir, { recursive: true, force: true });
    if (ctx.redis !== undefined) await deleteKeys(ctx.redis.url, ctx.redis.prefix);
  });

  /**
   * Closes the limiter (a memory limiter's lease is exclusive) and starts a new one of the same
   * kind on the same file (for 'redis': the same prefix).
   */
  async function reopen(options: LimiterOptions = fixtureOptions): Promise<Limiter> {
    await closeLimiter(ctx.limiter);
    ctx.limiter = createLimiter(kind, backing(), ctx.clock, options);
    return ctx.limiter;
  }

  /** The times of the events the backend keeps for `series`, oldest first. */
  const storedTimes = (series: string) => storedEventTimes(kind, backing(), ctx.limiter, series);
  /** Puts counted events into the backend directly and starts a new limiter on it. */
  async function storeEvents(series: string, events: readonly SeedEvent[]): Promise<void> {
    await seedEvents(kind, backing(), series, events);
    await reopen();
  }
  const sync = () => flushJournal(ctx.limiter);
  /**
   * Prunes as the kind does in a gateway: a cluster worker's `prune` is a no-op because the
   * primary prunes its own limiter on a timer, so for 'cluster' this prunes the primary's limiter
   * (answers are still asked through the channel).
   */
  const prune = (horizonMs: (series: string) => number) => decidingLimiter(ctx.limiter).prune(horizonMs);
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

  return { ctx, take, hold, fillAt, sync, reopen, prune, storedTimes, storeEvents };
}

/**
 * A SqliteLimiter on a second file in the test's folder, on the same clock: the reference a test
 * compares another limiter with. Call next to `limiterFixture`; `ref.limiter` and `ref.db` are
 * fresh for each test.
 */
export function referenceLimiter(ctx: LimiterContext, options: Pick<LimiterOptions, 'holdTtlMs'> = {}): { limiter: Limiter; db: SqliteDatabase } {
  const ref = {} as { limiter: Limiter; db: SqliteDatabase };
  beforeEach(() => {
    ref.db = openSqlite(join(ctx.dir, 'reference.db'));
    ref.limiter = new SqliteLimiter(ref.db, ctx.clock, options.holdTtlMs);
  });
  afterEach(async () => {
    await ref.limiter.close();
    ref.db.close();
  });
  return ref;
}

/** mulberry32: a small deterministic generator. */
export function generator(seed: number) {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), chance: (p: number) => next() < p };
}
