/**
 * The one place a Limiter is built, from the configured kind: memory (this process decides,
 * journaled to a SQLite file), a cluster worker's ClusterLimiter (its primary's memory limiter
 * decides), sqlite (every process decides in a transaction on the SQLite file), or Redis (every
 * instance decides in Redis). The gateway and the cluster primary call only createLimiter. For the
 * SQLite kinds it opens the limiter's own connection and creates the limiter tables there.
 */
import type { LimiterConfig } from '../config.js';
import type { Limiter } from '../contract.js';
import { openSqlite, type SqliteDatabase } from '../store/sqlite-db.js';
import { ClusterLimiter, type PrimaryChannel } from './cluster.js';
import { systemClock, type Clock } from './limiter.js';
import { MemoryLimiter } from './memory.js';
import { retryWhileBusy, type LimiterConflictError } from './ownership.js';
import { migrateSqliteLimiter, SqliteLimiter } from './sqlite.js';
import { FailModeLimiter } from './fail-mode.js';

export interface LimiterDeps {
  clock?: Clock;
  /** A hold older than this (a call that never settled, a crashed process's) is dropped. */
  holdTtlMs: number;
  /**
   * In a cluster worker: the channel to the primary. With the memory kind the primary decides for
   * every worker (see decidedByPrimary); other kinds decide in each process and ignore it.
   */
  primary?: PrimaryChannel;
  /** Trouble the limiter survives (a journal write that failed and will be retried). */
  onError?: (err: unknown) => void;
  /** The memory limiter lost its exclusive hold on the journal to another process: stop serving. */
  onLeaseLost?: (err: LimiterConflictError) => void;
  /** Redis: how long a series' events must be kept (its longest window); 32 days by default. */
  horizonMs?: (series: string) => number;
  /** Redis: told when Redis stops answering (with the error) and when it answers again (null). */
  onSharedChange?: (err: unknown | null) => void;
}

/** A built limiter and how to let go of everything it holds (the limiter, its connection). */
export interface LimiterHandle {
  limiter: Limiter;
  /** Resolves when the limiter's backend answers (readiness); absent when it is this process. */
  ping?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * True when, with several workers, the cluster primary keeps the limiter and workers ask it (the
 * memory kind); the other kinds decide in every process on their own.
 */
export function decidedByPrimary(config: LimiterConfig): boolean {
  return config.kind === 'memory';
}

/**
 * The limiter's own connection, with the limiter tables created. It never sleeps inside SQLite on
 * a busy lock (busy timeout 0): the limiters retry without blocking the event loop instead.
 */
function openLimiterDb(path: string): SqliteDatabase {
  const db = openSqlite(path, 0);
  try {
    retryWhileBusy(() => migrateSqliteLimiter(db));
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function onSqlite(path: string, build: (db: SqliteDatabase) => Limiter): LimiterHandle {
  const db = openLimiterDb(path);
  let limiter: Limiter;
  try {
    limiter = build(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    limiter,
    async close() {
      try {
        await limiter.close();
      } finally {
        db.close();
      }
    },
  };
}

export async function createLimiter(config: LimiterConfig, deps: LimiterDeps): Promise<LimiterHandle> {
  const clock = deps.clock ?? systemClock;
  switch (config.kind) {
    case 'memory': {
      if (deps.primary !== undefined) {
        const limiter = new ClusterLimiter(deps.primary);
        return { limiter, close: () => limiter.close() };
      }
      return onSqlite(
        config.journalPath,
        (db) => new MemoryLimiter(db, clock, deps.holdTtlMs, { onError: deps.onError, onLeaseLost: deps.onLeaseLost }),
      );
    }
    case 'sqlite':
      return onSqlite(config.path, (db) => new SqliteLimiter(db, clock, deps.holdTtlMs));
    case 'redis':
      return redisLimiter(config, deps);
  }
}

/**
 * Redis, behind the fail mode: while Redis cannot be reached, `closed` refuses calls (503) and
 * `open` counts them on a limiter of this process (in memory, journaled nowhere). Loaded only
 * when configured, so a SQLite install never loads the Redis client. Without an injected clock
 * the scripts use Redis's own time: one clock for every instance.
 */
async function redisLimiter(config: Extract<LimiterConfig, { kind: 'redis' }>, deps: LimiterDeps): Promise<LimiterHandle> {
  const { LimiterUnavailable, RedisLimiter } = await import('./redis.js');
  const shared = new RedisLimiter({
    url: config.url,
    prefix: config.prefix,
    clock: deps.clock,
    holdTtlMs: deps.holdTtlMs,
    timeoutMs: config.timeoutMs,
    horizonMs: deps.horizonMs,
  });
  let local: LimiterHandle | null = null;
  if (config.failMode === 'open') {
    local = onSqlite(':memory:', (db) => new MemoryLimiter(db, deps.clock ?? systemClock, deps.holdTtlMs, { onError: deps.onError }));
  }
  const limiter = new FailModeLimiter({
    shared,
    mode: config.failMode,
    local: local?.limiter,
    isUnavailable: (err) => err instanceof LimiterUnavailable,
    onChange: deps.onSharedChange,
  });
  return {
    limiter,
    ping: () => shared.ping(),
    async close() {
      await shared.close();
      await local?.close();
    },
  };
}
