/**
 * What the Redis limiter costs per call, beside the in-memory and SQLite limiters, in one run:
 * `npx tsx bench/redis-limiter.ts [--calls 20000] [--events 100000] [--concurrency 64]
 * [--url redis://127.0.0.1:6379]`. Not a test.
 *
 * A call is what a metered stored key's request does: one reserve (global requests per hour and
 * day and the key's requests per hour, counted; its tokens per day and spend per day and per
 * calendar month, held as estimates), then one commit of the actual tokens and spend. The
 * global series starts with `--events` events in both its windows (all within the last 50
 * minutes), so the figures are those of a busy window. Each kind runs twice: one call at a time
 * (µs per reserve + commit, median and p99) and `--concurrency` calls in flight (as a busy
 * gateway: calls per second). CPU per call is this process's (user + system, process.cpuUsage)
 * and, for Redis, the server's own (INFO cpu; on a shared Redis other clients' work counts too).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { openSqlite, type SqliteDatabase } from '../src/store/sqlite-db.js';
import { migrateSqliteLimiter, SqliteLimiter } from '../src/limits/sqlite.js';
import { MemoryLimiter } from '../src/limits/memory.js';
import { RedisLimiter } from '../src/limits/redis.js';
import { seriesKeys } from '../src/limits/redis-scripts.js';
import { DAY_MS, GLOBAL_REQUESTS, HOUR_MS, keyRules, keySeries, MONTH_MS } from '../src/limits/rules.js';
import type { Limiter, LimitRule, SeriesCost } from '../src/limits/limiter.js';
import { summarise } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    events: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    url: { type: 'string', default: process.env.PROXYGPT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const CALLS = Number(flags.calls);
const EVENTS = Number(flags.events);
const CONCURRENCY = Number(flags.concurrency);
const URL = flags.url!;
const WARMUP = 1000;

const BIG = 1e12;
const KEY = keySeries('bench');
const RULES: LimitRule[] = [
  { name: 'hourly', series: GLOBAL_REQUESTS, unit: 'requests', windowMs: HOUR_MS, limit: BIG },
  { name: 'daily', series: GLOBAL_REQUESTS, unit: 'requests', windowMs: DAY_MS, limit: BIG },
  ...keyRules('bench', { requestsPerHour: BIG, tokensPerDay: BIG, usdPerDay: 1e6, usdPerMonth: 1e7 }),
];
const COSTS: Record<string, SeriesCost> = {
  [GLOBAL_REQUESTS]: { amount: 1, hold: false },
  [KEY.requests]: { amount: 1, hold: false },
  [KEY.tokens]: { amount: 1200, hold: true },
  [KEY.usd]: { amount: 900, hold: true },
};
const ACTUAL = { [KEY.tokens]: 350, [KEY.usd]: 260 };

type Kind = 'memory' | 'sqlite' | 'redis';

interface Figures {
  kind: Kind;
  mode: string;
  calls: number;
  medianUs?: number;
  p99Us?: number;
  callsPerSecond: number;
  nodeCpuUs: number;
  redisCpuUs?: number;
}

/** The global series' prefilled events: times within the last 50 minutes, totals 1..n. */
function prefill(n: number): { ts: number; cum: number }[] {
  const now = Date.now();
  const span = 50 * 60_000;
  return Array.from({ length: n }, (_, i) => ({ ts: now - span + Math.floor((i * span) / n), cum: i + 1 }));
}

function prefillSqlite(db: SqliteDatabase, events: { ts: number; cum: number }[]): void {
  migrateSqliteLimiter(db);
  const insert = db.prepare('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (const e of events) insert.run(GLOBAL_REQUESTS, e.cum, e.ts);
    const last = events.at(-1);
    db.prepare('INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, 0)').run(GLOBAL_REQUESTS, last?.cum ?? 0, last?.ts ?? 0);
  })();
}

/** One entry per millisecond, as the Redis limiter keeps them (see redis-scripts.ts). */
async function prefillRedis(client: Redis, prefix: string, events: { ts: number; cum: number }[]): Promise<void> {
  const merged: { ts: number; before: number; after: number }[] = [];
  let previous = 0;
  for (const e of events) {
    const tail = merged.at(-1);
    if (tail !== undefined && tail.ts === e.ts) tail.after = e.cum;
    else merged.push({ ts: e.ts, before: previous, after: e.cum });
    previous = e.cum;
  }
  const [state, byTime, byTotal] = seriesKeys(prefix, GLOBAL_REQUESTS);
  for (let i = 0; i < merged.length; i += 5000) {
    const chunk = merged.slice(i, i + 5000);
    await client
      .pipeline()
      .zadd(byTime, ...chunk.flatMap((e) => [e.ts, e.before]))
      .zadd(byTotal, ...chunk.flatMap((e) => [e.after, e.ts]))
      .exec();
  }
  await client.hset(state, { cum: previous, held: 0, base: 0, last: merged.at(-1)?.ts ?? 0, first: merged[0]?.ts ?? 0 });
  for (const key of seriesKeys(prefix, GLOBAL_REQUESTS)) await client.pexpire(key, DAY_MS);
}

/** The Redis server's CPU time so far (user + system), from INFO cpu. */
async function redisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function oneCall(limiter: Limiter): Promise<void> {
  const decision = await limiter.reserve(RULES, COSTS);
  if (!decision.admitted) throw new Error(`refused in the bench by ${decision.blockedBy}`);
  await limiter.commit(decision.reservation!, ACTUAL);
}

/** Runs `calls` calls, `inFlight` at a time; per-call wall times only when one at a time. */
async function measure(kind: Kind, limiter: Limiter, calls: number, inFlight: number, redis?: Redis): Promise<Figures> {
  const times: number[] = [];
  const redisBefore = redis === undefined ? 0 : await redisCpuSeconds(redis);
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  if (inFlight === 1) {
    for (let i = 0; i < calls; i++) {
      const t = process.hrtime.bigint();
      await oneCall(limiter);
      times.push(Number(process.hrtime.bigint() - t) / 1e3);
    }
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next++ < calls) await oneCall(limiter);
      }),
    );
  }
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const redisAfter = redis === undefined ? 0 : await redisCpuSeconds(redis);
  const summary = times.length > 0 ? summarise(times) : undefined;
  return {
    kind,
    mode: inFlight === 1 ? 'one at a time' : `${inFlight} in flight`,
    calls,
    medianUs: summary?.median,
    p99Us: summary?.p99,
    callsPerSecond: calls / elapsedS,
    nodeCpuUs: (cpu.user + cpu.system) / calls,
    redisCpuUs: redis === undefined ? undefined : ((redisAfter - redisBefore) * 1e6) / calls,
  };
}

async function benchKind(kind: Kind, dir: string): Promise<Figures[]> {
  const events = prefill(EVENTS);
  let db: SqliteDatabase | undefined;
  let admin: Redis | undefined;
  const prefix = `proxygpt-bench:${process.pid}:`;
  let limiter: Limiter;
  if (kind === 'redis') {
    admin = new Redis(URL);
    await prefillRedis(admin, prefix, events);
    limiter = new RedisLimiter({ url: URL, prefix, horizonMs: (s) => (s.endsWith(':usd') ? MONTH_MS + DAY_MS : DAY_MS) });
  } else {
    db = openSqlite(join(dir, `${kind}.db`), 0);
    prefillSqlite(db, events);
    limiter = kind === 'memory' ? new MemoryLimiter(db) : new SqliteLimiter(db);
  }
  try {
    for (let i = 0; i < WARMUP; i++) await oneCall(limiter);
    const used = (await limiter.peek(RULES.slice(0, 1)))[0]!.used;
    if (used < EVENTS) throw new Error(`the prefilled window shows ${used} events, expected at least ${EVENTS}`);
    const figures = [await measure(kind, limiter, CALLS, 1, admin), await measure(kind, limiter, CALLS, CONCURRENCY, admin)];
    return figures;
  } finally {
    await limiter.close();
    db?.close();
    if (admin !== undefined) {
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await admin.unlink(...keys);
      } while (cursor !== '0');
      admin.disconnect();
    }
  }
}

const fmt = (v: number | undefined, digits = 1) => (v === undefined ? '—' : v.toFixed(digits));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-redis-'));
  const all: Figures[] = [];
  try {
    for (const kind of ['memory', 'sqlite', 'redis'] as const) all.push(...(await benchKind(kind, dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nreserve + commit of a metered key's call (7 rules, 4 series, 2 held), ${EVENTS} events in the global windows, ${CALLS} calls per row\n`);
  console.log('| limiter | mode | µs per call (median) | p99 | calls/s | Node CPU µs/call | Redis CPU µs/call |');
  console.log('|---|---|---|---|---|---|---|');
  for (const f of all) {
    console.log(`| ${f.kind} | ${f.mode} | ${fmt(f.medianUs)} | ${fmt(f.p99Us)} | ${fmt(f.callsPerSecond, 0)} | ${fmt(f.nodeCpuUs)} | ${fmt(f.redisCpuUs)} |`);
  }
}

await main();
