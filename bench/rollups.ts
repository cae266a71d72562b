/**
 * What the usage rollups cost and give: `npx tsx bench/rollups.ts [--postgres] [--records N]`.
 * Writes N (default 1,000,000) usage records spread over 30 days (20 keys of Zipf-like weight, 6
 * models with per-key preferences, statuses ~93 % 200, 4 % 429, 2 % 500, 1 % 499, log-normal
 * durations) in time order through `recordUsage` in batches of 500 into SQLite (a temp file opened
 * as the app opens it) and, with --postgres, into Postgres (PROXYGPT_BENCH_POSTGRES_URL, default
 * the test server; a schema of its own, dropped after). Write cost: µs per record of recordUsage
 * (records + rollups), against the same records inserted the way the store did before rollups
 * (the same INSERT, no rollup upsert, into a database without rollup tables), batch by batch
 * alternating, in the same run. Then the dashboard's four ranges (src/dashboard/ranges.ts, at a
 * `now` just before the newest record) read two ways, run by run alternating: per bucket (no
 * stepMs, as before the store summed steps; the overview grouped the rows into steps in JS) and
 * in the range's steps (the dashboard's query, rollupQuery: stepMs); each `rollups()` alone and
 * with `buildOverview()` (what /dashboard/api/overview computes), median of 20 runs: wall and
 * this process's CPU (for Postgres the server's CPU is not included). Then `lastUsed()`. Not a
 * test: nothing passes or fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openSqlite, type SqliteDatabase } from '../src/store/sqlite-db.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { openPostgresStore } from '../src/store/postgres.js';
import { migrate, MIGRATIONS } from '../src/store/postgres-migrations.js';
import type { RollupQuery, Store, UsageRecord } from '../src/contract.js';
import { ROLLUP_TABLES } from '../src/store/rollups.js';
import { RANGE_NAMES, rangeWindow, type RangeWindow } from '../src/dashboard/ranges.js';
import { buildOverview, rollupQuery } from '../src/dashboard/overview.js';

const args = process.argv.slice(2);
const withPostgres = args.includes('--postgres');
const recordCount = Number(args[args.indexOf('--records') + 1] ?? 0) || 1_000_000;
const BATCH = 500;
const RUNS = 20;
const DAY = 86_400_000;
const pgUrl = process.env.PROXYGPT_BENCH_POSTGRES_URL ?? process.env.PROXYGPT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NOW = Math.floor(Date.UTC(2026, 11, 1, 12, 0, 0) / 3_600_000) * 3_600_000;

/** mulberry32: the same records every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickWeighted<T>(rand: () => number, items: readonly T[], weights: readonly number[]): T {
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rand() * total;
  for (let i = 0; i < items.length; i++) if ((r -= weights[i]!) < 0) return items[i]!;
  return items[items.length - 1]!;
}

function* generate(): Generator<UsageRecord[]> {
  const rand = prng(42);
  const keys = Array.from({ length: 20 }, (_, i) => `key_${String(i).padStart(2, '0')}`);
  const keyWeights = keys.map((_, i) => 1 / (i + 1));
  const models = ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'o3-mini', 'text-embedding-3-small', null] as const;
  // Each key mostly uses two or three models.
  const modelWeights = keys.map(() => models.map(() => (rand() < 0.45 ? 1 + rand() * 9 : rand() * 0.3)));
  const span = 30 * DAY;
  const start = NOW - span;
  let batch: UsageRecord[] = [];
  for (let i = 0; i < recordCount; i++) {
    const ts = start + Math.floor((i / recordCount) * span + rand() * (span / recordCount));
    const k = keys.indexOf(pickWeighted(rand, keys, keyWeights));
    const model = pickWeighted(rand, models, modelWeights[k]!);
    const s = rand();
    const status = s < 0.93 ? 200 : s < 0.97 ? 429 : s < 0.99 ? 500 : 499;
    const normal = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const durationMs = status === 429 ? Math.round(5 + rand() * 40) : Math.max(1, Math.round(Math.exp(6.7 + 0.9 * normal)));
    const promptTokens = status === 200 ? Math.floor(50 + rand() * 2_000) : 0;
    const completionTokens = status === 200 && model !== 'text-embedding-3-small' ? Math.floor(rand() * 800) : 0;
    batch.push({
      ts, requestId: `req_${i}`, principal: keys[k]!, method: 'POST', path: model === 'text-embedding-3-small' ? '/v1/embeddings' : '/v1/chat/completions',
      model, status, durationMs, stream: rand() < 0.4, promptTokens, completionTokens, costMicroUsd: promptTokens * 2 + completionTokens * 8,
      estimated: false, upstream: 'openai',
    });
    if (batch.length === BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

interface Target {
  name: string;
  store: Store;
  /** The same records the way the store wrote them before rollups, into a database without them. */
  rawInsert(records: readonly UsageRecord[]): Promise<void>;
  /** Rows per rollup table. */
  rowCounts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

const RAW_COLUMNS = 'ts, request_id, principal, method, path, model, status, duration_ms, stream, prompt_tokens, completion_tokens, cost_micro_usd, estimated, upstream';

async function sqliteTarget(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-rollups-'));
  const store = new SqliteStore(openSqlite(join(dir, 'proxygpt.db')));
  await store.migrate();
  // The baseline: the same schema, rollup tables dropped, the store's own insert loop.
  const rawStore = new SqliteStore(openSqlite(join(dir, 'raw.db')));
  await rawStore.migrate();
  await rawStore.close();
  const raw: SqliteDatabase = openSqlite(join(dir, 'raw.db'));
  raw.exec(ROLLUP_TABLES.map((t) => `DROP TABLE ${t.name};`).join(' '));
  const insert = raw.prepare(`INSERT INTO usage_events (${RAW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertMany = raw.transaction((records: readonly UsageRecord[]) => {
    for (const r of records) {
      insert.run(r.ts, r.requestId, r.principal, r.method, r.path, r.model, r.status, r.durationMs, r.stream ? 1 : 0,
        r.promptTokens, r.completionTokens, r.costMicroUsd, r.estimated ? 1 : 0, r.upstream ?? null);
    }
  });
  const db = openSqlite(join(dir, 'proxygpt.db'));
  const count = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
  return {
    name: 'SQLite',
    store,
    async rawInsert(records) {
      insertMany.immediate(records);
    },
    async rowCounts() {
      return Object.fromEntries(ROLLUP_TABLES.map((t) => [t.name, count(t.name)]));
    },
    async close() {
      db.close();
      raw.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresTarget(): Promise<Target> {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const schema = `bench_rollups_${tag}`;
  const rawSchema = `bench_rollups_raw_${tag}`;
  const store = await openPostgresStore(pgUrl, { schema, poolSize: 2 });
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  const raw = new pg.Pool({ connectionString: pgUrl, options: `-c search_path=${rawSchema}`, max: 1 });
  const client = await raw.connect();
  await migrate(client, rawSchema, MIGRATIONS.filter((m) => m.version <= 2));
  client.release();
  const RAW_INSERT = `INSERT INTO usage_events (${RAW_COLUMNS}) SELECT ${RAW_COLUMNS}
    FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::int8[], $9::bool[],
      $10::int8[], $11::int8[], $12::int8[], $13::bool[], $14::text[]) WITH ORDINALITY AS u(${RAW_COLUMNS}, ord) ORDER BY ord`;
  const count = async (t: string) => Number((await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.${t}`)).rows[0]!.n);
  return {
    name: 'Postgres',
    store,
    async rawInsert(records) {
      const columns: unknown[][] = Array.from({ length: 14 }, () => []);
      for (const r of records) {
        [r.ts, r.requestId, r.principal, r.method, r.path, r.model, r.status, r.durationMs, r.stream,
          r.promptTokens, r.completionTokens, r.costMicroUsd, r.estimated, r.upstream ?? null].forEach((v, c) => columns[c]!.push(v));
      }
      await raw.query(RAW_INSERT, columns);
    },
    async rowCounts() {
      const out: Record<string, number> = {};
      for (const t of ROLLUP_TABLES) {
        await admin.query(`ANALYZE ${schema}.${t.name}`);
        out[t.name] = await count(t.name);
      }
      return out;
    },
    async close() {
      await store.close();
      await raw.end();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SCHEMA IF EXISTS ${rawSchema} CASCADE`);
      await admin.end();
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => Promise<unknown>): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1_000 };
}

async function write(t: Target): Promise<{ withUs: number; withoutUs: number }> {
  let withNs = 0n;
  let withoutNs = 0n;
  let n = 0;
  let b = 0;
  for (const batch of generate()) {
    // Alternate which goes first, so neither always meets a warmer cache.
    const first = b++ % 2 === 0;
    for (const which of first ? ['with', 'without'] : ['without', 'with']) {
      const t0 = process.hrtime.bigint();
      if (which === 'with') await t.store.recordUsage(batch);
      else await t.rawInsert(batch);
      const dt = process.hrtime.bigint() - t0;
      if (which === 'with') withNs += dt;
      else withoutNs += dt;
    }
    n += batch.length;
    if (n % 200_000 === 0) process.stdout.write(`  ${t.name}: ${n.toLocaleString('en')} records written\n`);
  }
  return { withUs: Number(withNs) / 1_000 / n, withoutUs: Number(withoutNs) / 1_000 / n };
}

/** The dashboard's ranges as it reads them, ending with the step that holds the newest record; and the 30 days of one key. */
const RANGES: Array<{ label: string; window: RangeWindow; principal?: string }> = [
  ...RANGE_NAMES.map((name) => ({ label: name, window: rangeWindow(name, NOW - 1) })),
  { label: '30d, one key', window: rangeWindow('30d', NOW - 1), principal: 'key_03' },
];

interface Way {
  query: RollupQuery;
  rows: number;
  read: Array<{ wallMs: number; cpuMs: number }>;
  overview: Array<{ wallMs: number; cpuMs: number }>;
}

/** Per bucket and stepped, run by run alternating: rollups() alone, then rollups() + buildOverview(). */
async function readRange(store: Store, window: RangeWindow, principal?: string): Promise<{ perBucket: Way; stepped: Way }> {
  const stepped = rollupQuery(window, principal);
  const { stepMs: _, ...perBucket } = stepped;
  const ways = [perBucket, stepped].map((query) => ({ query, rows: 0, read: [], overview: [] }) as Way);
  const nameOf = (id: string) => id;
  for (const way of ways) way.rows = (await store.rollups(way.query)).buckets.length; // warm-up, and the sizes
  for (let i = 0; i < RUNS; i++) {
    for (const way of i % 2 === 0 ? ways : [...ways].reverse()) {
      way.read.push(await time(() => store.rollups(way.query)));
      way.overview.push(await time(async () => buildOverview(await store.rollups(way.query), window, nameOf)));
    }
  }
  return { perBucket: ways[0]!, stepped: ways[1]! };
}

const ms = (runs: Array<{ wallMs: number; cpuMs: number }>) => `${median(runs.map((r) => r.wallMs)).toFixed(1)} ms (CPU ${median(runs.map((r) => r.cpuMs)).toFixed(1)})`;

const lines: string[] = [];
const targets = [await sqliteTarget()];
if (withPostgres) targets.push(await postgresTarget());
try {
  for (const t of targets) {
    console.log(`${t.name}: writing ${recordCount.toLocaleString('en')} records in batches of ${BATCH}…`);
    const from = lines.length;
    const w = await write(t);
    const rows = await t.rowCounts();
    lines.push(`\n${t.name}: ${recordCount.toLocaleString('en')} records over 30 days; rollup rows: ${Object.entries(rows).map(([name, n]) => `${name.replace('usage_rollup_', '')} ${n.toLocaleString('en')}`).join(', ')}`);
    lines.push(`  recordUsage: ${w.withUs.toFixed(2)} µs per record with rollups, ${w.withoutUs.toFixed(2)} µs without (+${(w.withUs - w.withoutUs).toFixed(2)} µs, ${(w.withUs / w.withoutUs).toFixed(2)}×)`);
    lines.push(`  wall, median of ${RUNS} (CPU of this process); "per bucket": no stepMs, "stepped": the dashboard's stepMs`);
    lines.push('  | range | rollup rows | step | rows returned: per bucket → stepped | rollups() per bucket | rollups() stepped | + buildOverview() per bucket | + buildOverview() stepped |');
    lines.push('  |---|---|---|---|---|---|---|---|');
    for (const { label, window, principal } of RANGES) {
      const { perBucket, stepped } = await readRange(t.store, window, principal);
      lines.push(`  | ${label} | ${window.granularity} | ${window.stepMs / 60_000} min | ${perBucket.rows.toLocaleString('en')} → ${stepped.rows.toLocaleString('en')} | ${ms(perBucket.read)} | ${ms(stepped.read)} | ${ms(perBucket.overview)} | ${ms(stepped.overview)} |`);
    }
    const last = [];
    for (let i = 0; i < RUNS; i++) last.push(await time(() => t.store.lastUsed()));
    lines.push(`  lastUsed(): ${median(last.map((r) => r.wallMs)).toFixed(2)} ms (${Object.keys(await t.store.lastUsed()).length} principals)`);
    console.log(lines.slice(from).join('\n'));
  }
} finally {
  for (const t of targets) await t.close();
}
console.log(`\n--- summary ---${lines.join('\n')}`);
