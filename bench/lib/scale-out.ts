/**
 * The scale-out part of `npm run bench`: what several instances on Postgres + Redis cost per
 * call, against one instance on the embedded SQLite, with the metered stored key in every case.
 * Three set-ups, interleaved round by round at 32 connections in all:
 *   sqlite       one gateway, SQLite store, in-memory limiter (the default install);
 *   sqlite+redis one gateway, SQLite store, Redis limiter (what the Redis limiter adds);
 *   pg+redis ×2  two gateways on one Postgres and one Redis, 16 connections each at once.
 * CPU per call is utime + stime from /proc of the gateway processes, and beside it of the Redis
 * server and of the Postgres cluster (the postmaster's tree), divided by the calls answered.
 * Skipped, with a line, when Postgres or Redis cannot be reached.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { Redis } from 'ioredis';
import { cannon } from './load.js';
import { clockTicksPerSecond, ticksBetween, treeTicks } from './cpu.js';
import { createStoredKey, startGateway, type Service } from './services.js';
import { stopChild } from './procs.js';
import { gatewayTarget, type Target } from './targets.js';
import { rotate } from './stats.js';

export interface ScaleOutFigures {
  setup: string;
  instances: number;
  rps: number;
  calls: number;
  /** µs of CPU per call answered: the gateways, Redis, Postgres (null when not involved or unreadable). */
  gatewayUs: number | null;
  redisUs: number | null;
  postgresUs: number | null;
}

export interface ScaleOutOptions {
  postgresUrl: string;
  redisUrl: string;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  logLevel: string;
}

async function redisPid(url: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    await client.connect();
    const info = await client.info('server');
    return Number(/process_id:(\d+)/.exec(info)?.[1]) || undefined;
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** The postmaster of the Postgres at `url` (its tree holds every backend), if it runs here. */
async function postmasterPid(url: string): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const dir = (await client.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'data_directory'")).rows[0]?.setting;
    const first = dir === undefined ? '' : execFileSync('head', ['-1', `${dir}/postmaster.pid`], { encoding: 'utf8' }).trim();
    return Number(first) || undefined;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether both services answer; the reason when not. */
export async function scaleOutAvailable(postgresUrl: string, redisUrl: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    return `Postgres at ${postgresUrl.replace(/:[^:@/]*@/, ':***@')} not reachable (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
  return (await redisPid(redisUrl)) === undefined ? `Redis at ${redisUrl} not reachable` : null;
}

interface Setup {
  name: string;
  services: Service[];
  targets: Target[];
}

const ticksOf = (pids: (number | undefined)[]) => pids.map((pid) => treeTicks(pid));
const spent = (before: (Map<number, number> | null)[], after: (Map<number, number> | null)[]) =>
  before.every((b) => b !== null) && after.every((a) => a !== null) ? before.reduce((n, b, i) => n + ticksBetween(b!, after[i]!), 0) : null;

export async function scaleOut(mockPort: number, dir: string, options: ScaleOutOptions, step: (line: string) => void): Promise<ScaleOutFigures[]> {
  const schema = `bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: options.postgresUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const pgUrl = new URL(options.postgresUrl);
  pgUrl.searchParams.set('options', `-c search_path=${schema}`);
  const prefix = `proxygpt-bench:${process.pid}:`;
  const redis = { PROXYGPT_REDIS_URL: options.redisUrl, PROXYGPT_REDIS_PREFIX: prefix };
  const setups: Setup[] = [];
  try {
    const start = async (name: string, count: number, env: Record<string, string>): Promise<Setup> => {
      const services: Service[] = [];
      for (let i = 0; i < count; i++) services.push(await startGateway(mockPort, dir, { workers: 1, logLevel: options.logLevel, name: `${name}-${i + 1}`, env }));
      const key = await createStoredKey(services[0]!.port, `bench-${name}`);
      return { name, services, targets: services.map((s, i) => gatewayTarget(s.port, `${name}-${i + 1}`, s.child.proc.pid, key)) };
    };
    step('scale-out: starting one gateway on SQLite, one on SQLite + Redis, two on Postgres + Redis');
    setups.push(await start('sqlite', 1, {}));
    setups.push(await start('sqlite+redis', 1, redis));
    setups.push(await start('pg+redis', 2, { ...redis, PROXYGPT_DATABASE_URL: pgUrl.toString() }));
    const redisServer = await redisPid(options.redisUrl);
    const postmaster = await postmasterPid(options.postgresUrl);

    const connectionsEach = (setup: Setup) => 32 / setup.targets.length;
    const run = (setup: Setup, seconds: number, keep: boolean) => Promise.all(setup.targets.map((t) => cannon(t, connectionsEach(setup), seconds, keep)));
    for (const setup of setups) await run(setup, options.warmupSeconds, false);
    const totals = new Map(setups.map((s) => [s.name, { ok: 0, served: 0, seconds: 0, gateway: 0 as number | null, redis: 0 as number | null, postgres: 0 as number | null }]));
    for (let r = 0; r < options.rounds; r++) {
      for (const setup of rotate(setups, r)) {
        step(`scale-out: ${setup.name}, round ${r + 1} of ${options.rounds}`);
        const pids = setup.targets.map((t) => t.pid);
        const before = [ticksOf(pids), ticksOf([redisServer]), ticksOf([postmaster])];
        const outcomes = await run(setup, options.seconds, false);
        const after = [ticksOf(pids), ticksOf([redisServer]), ticksOf([postmaster])];
        const t = totals.get(setup.name)!;
        t.ok += outcomes.reduce((n, o) => n + o.ok, 0);
        t.served += outcomes.reduce((n, o) => n + o.ok + o.non2xx, 0);
        t.seconds += Math.max(...outcomes.map((o) => o.seconds));
        const add = (sum: number | null, ticks: number | null) => (sum === null || ticks === null ? null : sum + ticks);
        t.gateway = add(t.gateway, spent(before[0]!, after[0]!));
        t.redis = add(t.redis, spent(before[1]!, after[1]!));
        t.postgres = add(t.postgres, spent(before[2]!, after[2]!));
      }
    }
    const perCall = (ticks: number | null, served: number) => (ticks === null || served === 0 ? null : (ticks / clockTicksPerSecond()) * 1e6 / served);
    return setups.map((setup) => {
      const t = totals.get(setup.name)!;
      return {
        setup: setup.name,
        instances: setup.targets.length,
        rps: t.ok / t.seconds,
        calls: t.ok,
        gatewayUs: perCall(t.gateway, t.served),
        redisUs: setup.name === 'sqlite' ? null : perCall(t.redis, t.served),
        postgresUs: setup.name === 'pg+redis' ? perCall(t.postgres, t.served) : null,
      };
    });
  } finally {
    for (const setup of setups) for (const s of setup.services) await stopChild(s.child);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.end();
    const client = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    const keys = await client.keys(`${prefix}*`).catch(() => [] as string[]);
    if (keys.length > 0) await client.del(...keys).catch(() => 0);
    client.disconnect();
  }
}
