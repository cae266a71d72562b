/**
 * What a stored-key lookup (`findKeyByHash`, done on every request with a stored key) costs on
 * each store: `npx tsx bench/store-lookup.ts [lookups per round] [keys] [rounds]`. SQLite in a temp
 * file (opened as the app opens it) and Postgres (PROXYGPT_BENCH_POSTGRES_URL, default the test
 * server, in a schema of its own that is dropped afterwards), each holding `keys` keys, a warm
 * pool, then rounds of sequential lookups of random existing hashes, backends alternating round by
 * round. Per lookup: wall time, CPU time of this node process (process.cpuUsage), and for Postgres
 * the CPU time of the server process that answered (from /proc, 10 ms ticks) and a `SELECT 1`
 * round trip on the same pool for scale. Medians over the rounds. Not a test: nothing passes or fails.
 */
import { rmSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { generateKeyId, generateSecret, hashSecret, displayPrefix } from '../src/auth/secrets.js';
import { openSqlite } from '../src/store/sqlite-db.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { openPostgresStore } from '../src/store/postgres.js';
import type { Store } from '../src/contract.js';
import { clockTicksPerSecond } from './lib/cpu.js';

const lookups = Number(process.argv[2] ?? 5_000);
const keyCount = Number(process.argv[3] ?? 1_000);
const rounds = Number(process.argv[4] ?? 5);
const pgUrl = process.env.PROXYGPT_BENCH_POSTGRES_URL ?? process.env.PROXYGPT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Round {
  wallUs: number;
  cpuUs: number;
  serverCpuUs: number | null;
}

interface Backend {
  name: string;
  store: Store;
  /** CPU seconds of the server process answering, or null where there is none to read. */
  serverCpuSeconds(): number | null;
  close(): Promise<void>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function fill(store: Store): Promise<string[]> {
  const hashes: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    const secret = generateSecret();
    hashes.push(hashSecret(secret));
    await store.createKey({
      id: generateKeyId(),
      name: `bench-${i}`,
      notes: '',
      hash: hashes[i]!,
      prefix: displayPrefix(secret),
      expiresAt: null,
      policy: { requestsPerHour: 1_000, models: ['gpt-4o*'] },
      now: Date.now(),
    });
  }
  return hashes;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-'));
  const store = new SqliteStore(openSqlite(join(dir, 'proxygpt.db')));
  return {
    name: 'sqlite',
    store,
    serverCpuSeconds: () => null,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  const schema = `bench_lookup_${process.pid}_${randomBytes(3).toString('hex')}`;
  const applicationName = `proxygpt-bench-${process.pid}`;
  const store = await openPostgresStore(pgUrl, { schema, poolSize: 1, applicationName });
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await store.ping(); // the store's one connection exists now
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
  const pid = rows.length === 1 ? rows[0]!.pid : null;
  const ticks = clockTicksPerSecond();
  return {
    name: 'postgres',
    store,
    serverCpuSeconds() {
      if (pid === null) return null;
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return (Number(fields[11]) + Number(fields[12])) / ticks; // utime, stime
      } catch {
        return null; // the server runs elsewhere
      }
    },
    async close() {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

async function round(backend: Backend, hashes: string[], call: (hash: string) => Promise<unknown>): Promise<Round> {
  const picks = Array.from({ length: lookups }, () => hashes[Math.floor(Math.random() * hashes.length)]!);
  const server0 = backend.serverCpuSeconds();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const hash of picks) await call(hash);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1_000 / lookups;
  const cpu = process.cpuUsage(cpu0);
  const server1 = backend.serverCpuSeconds();
  return {
    wallUs,
    cpuUs: (cpu.user + cpu.system) / lookups,
    serverCpuUs: server0 === null || server1 === null ? null : ((server1 - server0) * 1e6) / lookups,
  };
}

const backends = [await sqliteBackend()];
try {
  backends.push(await postgresBackend());
} catch (err) {
  console.log(`Postgres not measured: ${(err as Error).message}`);
}
try {
  const hashes = new Map<string, string[]>();
  for (const b of backends) hashes.set(b.name, await fill(b.store));
  const results = new Map<string, { lookup: Round[]; ping: Round[] }>(backends.map((b) => [b.name, { lookup: [], ping: [] }]));
  for (const b of backends) {
    await round(b, hashes.get(b.name)!, (h) => b.store.findKeyByHash(h)); // warm-up
    await round(b, hashes.get(b.name)!, () => b.store.ping());
  }
  for (let r = 0; r < rounds; r++) {
    for (const b of r % 2 === 0 ? backends : [...backends].reverse()) {
      const found = await b.store.findKeyByHash(hashes.get(b.name)![0]!);
      if (found === null) throw new Error(`${b.name}: a created key was not found`);
      results.get(b.name)!.lookup.push(await round(b, hashes.get(b.name)!, (h) => b.store.findKeyByHash(h)));
      results.get(b.name)!.ping.push(await round(b, hashes.get(b.name)!, () => b.store.ping()));
    }
  }
  const fmt = (x: number | null) => (x === null ? '—' : x.toFixed(1));
  const med = (rs: Round[], f: (r: Round) => number | null) => {
    const xs = rs.map(f).filter((x): x is number => x !== null);
    return xs.length === rs.length ? median(xs) : null;
  };
  console.log(`\nfindKeyByHash: ${keyCount} keys, ${rounds} rounds × ${lookups} sequential lookups, medians (µs per call)\n`);
  console.log('| store | call | wall µs | node CPU µs | server CPU µs |');
  console.log('|---|---|---:|---:|---:|');
  for (const b of backends) {
    const { lookup, ping } = results.get(b.name)!;
    for (const [call, rs] of [['findKeyByHash', lookup], ['ping (SELECT 1)', ping]] as const) {
      console.log(`| ${b.name} | ${call} | ${fmt(med(rs, (r) => r.wallUs))} | ${fmt(med(rs, (r) => r.cpuUs))} | ${fmt(med(rs, (r) => r.serverCpuUs))} |`);
    }
  }
} finally {
  for (const b of backends) await b.close();
}
