/**
 * This build against another one, in one interleaved run: `npx tsx bench/compare-builds.ts
 * <other-checkout>` (a checkout of another revision with its `dist/` built, e.g. a git worktree
 * at the revision before a change). Both gateways run side by side on one mock, same settings as
 * `npm run bench`; for the environment key, the metered stored key, and PROXYGPT_WORKERS=2, it
 * prints requests/s and CPU per call (the serving process tree, from /proc) of each, and the
 * ratio this / other. Same-run ratios are the figure to quote: absolute ones move with the machine.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildIfStale, createStoredKey, ROOT, startGateway, startMock } from './lib/services.js';
import { guardChildren, stopAll, stopChild, type Child } from './lib/procs.js';
import { gatewayTarget, type Target } from './lib/targets.js';
import { throughput } from './lib/load.js';

const other = resolve(process.argv[2] ?? '');
if (!existsSync(join(other, 'dist', 'main.js'))) {
  console.error('usage: npx tsx bench/compare-builds.ts <checkout with dist/ built>');
  process.exit(2);
}
const rounds = Number(process.env.BENCH_LOAD_ROUNDS ?? 5);
const seconds = Number(process.env.BENCH_LOAD_SECONDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'proxygpt-compare-'));
guardChildren(900_000, (reason) => console.error(`compare-builds: ABORTED: ${reason}`));

const us = (v: number | null | undefined) => (v == null ? '–' : `${v.toFixed(0)} µs`);

try {
  console.error(`compare-builds: ${buildIfStale(false)}`);
  const mock = await startMock(dir);
  const rows: string[] = [];
  for (const [label, workers, stored] of [
    ['environment key', 1, false],
    ['metered stored key', 1, true],
    ['PROXYGPT_WORKERS=2, environment key', 2, false],
  ] as const) {
    const targets: Target[] = [];
    const children: Child[] = [];
    for (const [name, root] of [['this', ROOT], ['other', other]] as const) {
      const g = await startGateway(mock.port, dir, { workers, logLevel: 'warn', name: `${name}-${workers}w`, root });
      children.push(g.child);
      const key = stored ? await createStoredKey(g.port) : undefined;
      targets.push(gatewayTarget(g.port, name, g.child.proc.pid, key));
    }
    console.error(`compare-builds: ${label}, ${rounds} rounds of ${seconds} s at 32 connections`);
    const [mine, theirs] = await throughput(targets, 32, rounds, seconds, 2);
    rows.push(
      `| ${label} | ${mine!.rps.toFixed(0)} | ${theirs!.rps.toFixed(0)} | ${us(mine!.cpuUsPerCall)} | ${us(theirs!.cpuUsPerCall)} | ${mine!.cpuUsPerCall && theirs!.cpuUsPerCall ? (mine!.cpuUsPerCall / theirs!.cpuUsPerCall).toFixed(2) + '×' : '–'} |`,
    );
    for (const child of children) await stopChild(child);
  }
  console.log(`this: ${ROOT}\nother: ${other}\n`);
  console.log('| target | req/s this | req/s other | CPU per call this | CPU per call other | this / other |\n|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
