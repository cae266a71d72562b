/**
 * What a second worker costs: `npx tsx bench/workers.ts [other-checkout]`. In one interleaved run
 * at 32 connections with the environment key: one worker with the bench's global limits, two
 * workers without limits (the cost of the split itself), two workers with limits (the leases:
 * src/limits/cluster-leases.ts), and, given another checkout with its `dist/` built (e.g. a
 * worktree at an older revision), two of its workers with limits. Prints requests/s and CPU per
 * call of every process of each (`/proc`), and the ratio to one worker. BENCH_LOAD_ROUNDS (10) ×
 * BENCH_LOAD_SECONDS (3); every gateway is warmed for BENCH_WORKERS_WARMUP_S (5) first.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildIfStale, startGateway, startMock } from './lib/services.js';
import { guardChildren, stopAll } from './lib/procs.js';
import { gatewayTarget, type Target } from './lib/targets.js';
import { cannon, throughput } from './lib/load.js';

const other = process.argv[2] === undefined ? undefined : resolve(process.argv[2]);
if (other !== undefined && !existsSync(join(other, 'dist', 'main.js'))) {
  console.error('usage: npx tsx bench/workers.ts [checkout with dist/ built]');
  process.exit(2);
}
const rounds = Number(process.env.BENCH_LOAD_ROUNDS ?? 10);
const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 3);
const warmup = Number(process.env.BENCH_WORKERS_WARMUP_S ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'proxygpt-workers-'));
guardChildren(900_000, (reason) => console.error(`workers: ABORTED: ${reason}`));

try {
  console.error(`workers: ${buildIfStale(false)}`);
  const mock = await startMock(dir);
  const noLimits = { USE_HOURLY_RATE_LIMIT: 'false', USE_DAILY_RATE_LIMIT: 'false' };
  const setups: [string, number, Record<string, string>, string | undefined][] = [
    ['1 worker', 1, {}, undefined],
    ['2 workers, no limits', 2, noLimits, undefined],
    ['2 workers', 2, {}, undefined],
  ];
  if (other !== undefined) setups.push([`2 workers of ${other}`, 2, {}, other]);
  const targets: Target[] = [];
  for (const [name, workers, env, root] of setups) {
    const gw = await startGateway(mock.port, dir, { workers, logLevel: 'warn', name: `gateway-${targets.length}`, env, root });
    const target = gatewayTarget(gw.port, name, gw.child.proc.pid);
    console.error(`workers: warming up "${name}" for ${warmup} s`);
    await cannon(target, 32, warmup, false);
    targets.push(target);
  }
  console.error(`workers: ${rounds} rounds of ${seconds} s at 32 connections`);
  const figures = await throughput(targets, 32, rounds, seconds, 1);
  const one = figures[0]?.cpuUsPerCall;
  console.log('| set-up | req/s | µs CPU per call (all processes) | × 1 worker |\n|---|---|---|---|');
  for (const f of figures) {
    const ratio = one == null || f.cpuUsPerCall == null ? '–' : `${(f.cpuUsPerCall / one).toFixed(2)}×`;
    console.log(`| ${f.target} | ${f.rps.toFixed(0)} | ${f.cpuUsPerCall?.toFixed(0) ?? '–'} | ${ratio} |`);
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
