/**
 * What stands behind each kind of limiter in the tests, and what only the backend can tell: how
 * to build one ('sqlite': SqliteLimiter, 'memory': MemoryLimiter, 'cluster': a ClusterLimiter
 * asking a MemoryLimiter served by `serveLimiter` over an in-process fake IPC channel, as a
 * cluster worker asks its primary; 'redis': RedisLimiter under a key prefix of the test's own),
 * the times of the events a backend has stored (for SQLite kinds read from the limit_events
 * table, a memory limiter's journal written first; for Redis from the series' sorted set), and
 * how to put many events into a backend at once. The contract tests call only these, so their
 * assertions hold for every backend and hold no SQL.
 */
import { MemoryLimiter, type MemoryLimiterOptions } from '../../src/limits/memory.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { ClusterLimiter, serveLimiter } from '../../src/limits/cluster.js';
import { RedisLimiter } from '../../src/limits/redis.js';
import { seriesKeys } from '../../src/limits/redis-scripts.js';
import type { Clock, Limiter } from '../../src/limits/limiter.js';
import type { SqliteDatabase } from '../../src/store/sqlite-db.js';
import { inspector } from '../support/redis.js';
import { ipcPair, type IpcPair } from './fake-ipc.js';

export type LimiterKind = 'sqlite' | 'memory' | 'cluster' | 'redis';

export interface LimiterOptions {
  holdTtlMs?: number;
  /** Memory limiter (for 'cluster': the primary's) only. */
  memory?: MemoryLimiterOptions;
}

/** Where a limiter keeps its counts: a SQLite file (every kind has one) and, for 'redis', a key prefix. */
export interface Backing {
  db: SqliteDatabase;
  redis?: { url: string; prefix: string };
}

/** A counted event to put into a backend directly. */
export interface SeedEvent {
  ts: number;
  amount: number;
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

/** A limiter of `kind` on `backing`. */
export function createLimiter(kind: LimiterKind, backing: Backing, clock: Clock, options: LimiterOptions = {}): Limiter {
  switch (kind) {
    case 'cluster':
      return createClusterLimiter(backing.db, clock, options).limiter;
    case 'sqlite':
      return new SqliteLimiter(backing.db, clock, options.holdTtlMs);
    case 'memory':
      return new MemoryLimiter(backing.db, clock, options.holdTtlMs, options.memory);
    case 'redis': {
      if (backing.redis === undefined) throw new Error('a redis limiter needs a Redis URL and prefix');
      return new RedisLimiter({ url: backing.redis.url, prefix: backing.redis.prefix, clock, holdTtlMs: options.holdTtlMs });
    }
  }
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

/** Writes a memory limiter's journal (a 'cluster' limiter's primary's) to its tables; nothing to do for the others. */
export function flushJournal(limiter: Limiter): void {
  const deciding = decidingLimiter(limiter);
  if (deciding instanceof MemoryLimiter) deciding.flush();
}

/** The times of the events stored for `series`, oldest first, as the backend keeps them. */
export async function storedEventTimes(kind: LimiterKind, backing: Backing, limiter: Limiter, series: string): Promise<number[]> {
  if (kind === 'redis') {
    const client = inspector(backing.redis!.url);
    try {
      const flat = await client.zrange(seriesKeys(backing.redis!.prefix, series)[1], 0, -1, 'WITHSCORES');
      return flat.filter((_, i) => i % 2 === 1).map(Number);
    } finally {
      client.disconnect();
    }
  }
  flushJournal(limiter);
  const rows = backing.db.prepare('SELECT ts FROM limit_events WHERE series = ? ORDER BY cum').all(series) as { ts: number }[];
  return rows.map((r) => r.ts);
}

/**
 * Puts counted events (times non-decreasing) into the backend directly, as a limiter would have
 * stored them. Start a new limiter afterwards (a memory limiter reads the tables as it starts).
 */
export async function seedEvents(kind: LimiterKind, backing: Backing, series: string, events: readonly SeedEvent[]): Promise<void> {
  if (kind !== 'redis') {
    const insert = backing.db.prepare('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)');
    backing.db.transaction(() => {
      let cum = 0;
      for (const e of events) insert.run(series, (cum += e.amount), e.ts);
      const last = events.at(-1)?.ts ?? 0;
      backing.db.prepare('INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, 0)').run(series, cum, last);
    })();
    return;
  }
  // Redis keeps one entry per millisecond, with the totals before and after it (see redis-scripts.ts).
  const merged: { ts: number; before: number; after: number }[] = [];
  let cum = 0;
  for (const e of events) {
    const tail = merged.at(-1);
    if (tail !== undefined && tail.ts === e.ts) tail.after = cum + e.amount;
    else merged.push({ ts: e.ts, before: cum, after: cum + e.amount });
    cum += e.amount;
  }
  const [state, byTime, byTotal] = seriesKeys(backing.redis!.prefix, series);
  const client = inspector(backing.redis!.url);
  try {
    for (let i = 0; i < merged.length; i += 5000) {
      const chunk = merged.slice(i, i + 5000);
      await client
        .pipeline()
        .zadd(byTime, ...chunk.flatMap((e) => [e.ts, e.before]))
        .zadd(byTotal, ...chunk.flatMap((e) => [e.after, e.ts]))
        .exec();
    }
    const fields = { cum, held: 0, base: 0, last: merged.at(-1)?.ts ?? 0 };
    await client.hset(state, merged.length > 0 ? { ...fields, first: merged[0]!.ts } : fields);
  } finally {
    client.disconnect();
  }
}
