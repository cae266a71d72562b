/**
 * The scale-out part of `npm run bench` alone (`npx tsx bench/scale-out.ts`): one gateway on
 * SQLite, one on SQLite + Redis, two on Postgres + Redis, interleaved (see bench/lib/scale-out.ts).
 * BENCH_LOAD_ROUNDS, BENCH_LOAD_SECONDS, BENCH_POSTGRES_URL, BENCH_REDIS_URL as for the bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIfStale, startMock } from './lib/services.js';
import { guardChildren, stopAll } from './lib/procs.js';
import { scaleOut, scaleOutAvailable } from './lib/scale-out.js';

const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const rounds = Number(process.env.BENCH_LOAD_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'proxygpt-scale-'));
guardChildren((rounds * seconds * 3 + 180) * 1000, (reason) => console.error(`scale-out: ABORTED: ${reason}`));
try {
  console.error(`scale-out: ${buildIfStale(false)}`);
  const missing = await scaleOutAvailable(postgresUrl, redisUrl);
  if (missing !== null) throw new Error(missing);
  const mock = await startMock(dir);
  const figures = await scaleOut(mock.port, dir, { postgresUrl, redisUrl, rounds, seconds, warmupSeconds: 2, logLevel: 'warn' }, (line) => console.error(line));
  const r = (v: number | null) => (v === null ? '–' : v.toFixed(0));
  console.table(figures.map((s) => ({ setup: s.setup, instances: s.instances, 'req/s': r(s.rps), calls: s.calls, 'µs gateways': r(s.gatewayUs), 'µs Redis': r(s.redisUs), 'µs Postgres': r(s.postgresUs) })));
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
