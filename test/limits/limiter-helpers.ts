/**
 * Shared by the limiter tests: a fresh limiter of any kind ('sqlite': SqliteLimiter, 'memory':
 * MemoryLimiter, 'cluster': a ClusterLimiter asking a MemoryLimiter served by `serveLimiter` over
 * an in-process fake IPC channel, as a cluster worker asks its primary) on its own SQLite file for
 * each test, with a clock the test sets through `ctx.now` (T0 unless told otherwise, at the start
 * of each test), rule builders, and shorthands to reserve counted (`take`) or held (`hold`)
 * amounts. `sync()` writes a memory limiter's journal (for 'cluster': the primary's) to the
 * tables, for tests that read them directly (a no-op for SQLite); `prune()` prunes where the kind
 * prunes (for 'cluster': the primary's limiter, as the primary does on its timer).
 */
import { afterEach, beforeEach, expect } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { MemoryLimiter, type MemoryLimiterOptions } from '../../src/limits/memory.js';
import { ClusterLimiter, serveLimiter } from '../../src/limits/cluster.js';
import type { Clock, LimitRule, Limiter, RuleState, SeriesCost } from '../../src/limits/limiter.js';
import { tempDir } from '../helpers.js';
import { ipcPair, type IpcPair } from './fake-ipc.js';

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = 1_700_000_000_000;

export type LimiterKind = 'sqlite' | 'memory' | 'cluster';
export const KINDS = ['sqlite', 'memory', 'cluster'] as const satisfies readonly LimiterKind[];

export const hourly = (limit: number, series = 's'): LimitRule => ({ name: 'hourly', series, unit: 'requests', windowMs: HOUR, limit });
export const daily = (limit: number, series = 's'): LimitRule => ({ name: 'daily', series, unit: 'requests', windowMs: DAY, limit });

/** The same cost in every series the rules name. */
export const costs = (rules: LimitRule[], amount: number, held: boolean): Record<string, SeriesCost> =>
  Object.fromEntries(rules.map((r) => [r.series, { amount, hold: held }]));
export const byName = (states: RuleState[], name: string) => states.find((s) => s.name === name)!;

export interface LimiterOptions {
  holdTtlMs?: number;
  /** Memory limiter (for 'cluster': the primary's) only. */
  memory?: MemoryLimiterOptions;
}

/** What stands behind a 'cluster' limiter: the primary's limiter and the channel to it. */
export interface ClusterParts {
  primary: MemoryLimiter;
  channel: IpcPair;
}
const clusterParts = new WeakMap<Limiter, ClusterParts>();

/** A worker's ClusterLimiter served by a new MemoryLimiter on `db` over a fake IPC channel. */
export function createClusterLimiter(db: SqliteDatabase, clock: Clock, options: LimiterOptions = {}): { limiter: ClusterLimiter } & ClusterParts {
  const primary = new MemoryLimiter(db, clock, options.holdTtlMs, options.memory);
  const channel = ipcPair();
  serveLimiter(primary, channel.primary);
  const limiter = new ClusterLimiter(channel.worker);
  clusterParts.set(limiter, { primary, channel });
  return { limiter, primary, channel };
}

/** A limiter of `kind` on `db`. */
export function createLimiter(kind: LimiterKind, db: SqliteDatabase, clock: Clock, options: LimiterOptions = {}): Limiter {
  if (kind === 'cluster') return createClusterLimiter(db, clock, options).limiter;
  return kind === 'sqlite'
    ? new SqliteLimiter(db, clock, options.holdTtlMs)
    : new MemoryLimiter(db, clock, options.holdTtlMs, options.memory);
}

/** The limiter that decides: the primary's for a 'cluster' limiter, else the limiter itself. */
export function decidingLimiter(limiter: Limiter): Limiter {
  return clusterParts.get(limiter)?.primary ?? limiter;
}

/** Closes a limiter; for a 'cluster' one also its worker (the channel ends) and the primary's limiter. */
export async function closeLimiter(limiter: Limiter): Promise<void> {
  await limiter.close();
  const parts = clusterParts.get(limiter);
  if (parts === undefined) return;
  parts.channel.exit();
  await parts.primary.close();
}

/** Writes a memory limiter's journal (a 'cluster' limiter's primary's) to its tables; nothing to do for a SQLite limiter. */
export function flushJournal(limiter: Limiter): void {
  const deciding = decidingLimiter(limiter);
  if (deciding instanceof MemoryLimiter) deciding.flush();
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
    await closeLimiter(ctx.limiter);
    ctx.db.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  /** Closes the limiter (a memory limiter's lease is exclusive) and starts a new one of the same kind on the same file. */
  async function reopen(options: LimiterOptions = fixtureOptions): Promise<Limiter> {
    await closeLimiter(ctx.limiter);
    ctx.limiter = createLimiter(kind, ctx.db, ctx.clock, options);
    return ctx.limiter;
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

  return { ctx, take, hold, fillAt, sync, reopen, prune };
}

/**
 * A SqliteLimiter on a second file in the test's folder, on the same clock: the reference a test
 * compares another limiter with. Call next to `limiterFixture`; `ref.limiter` and `ref.db` are
 * fresh for each test.
 */
export function referenceLimiter(ctx: LimiterContext): { limiter: Limiter; db: SqliteDatabase } {
  const ref = {} as { limiter: Limiter; db: SqliteDatabase };
  beforeEach(() => {
    ref.db = openSqlite(join(ctx.dir, 'reference.db'));
    ref.limiter = new SqliteLimiter(ref.db, ctx.clock);
  });
  afterEach(async () => {
    await ref.limiter.close();
    ref.db.close();
  });
  return ref;
}
