/**
 * `npm run bench`: what the gateway costs, side by side with the direct call to the mock upstream
 * and (when it can be installed) a peer gateway, Portkey 1.15.2, in one run. See bench/README.md.
 *
 * Flags: --no-peer (or BENCH_PEER=0) skips the peer; --build rebuilds dist/ even when up to date;
 * --quick uses small round counts (a smoke run of a few seconds per part). Every count and
 * duration can be set by an environment variable (BENCH_*, listed in `settings` below).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, type } from 'node:os';
import { join } from 'node:path';
import { buildIfStale, ROOT, startGateway, startMock } from './lib/services.js';
import { guardChildren, openFilesLimit, rssMb, stopAll, stopChild } from './lib/procs.js';
import { directTarget, gatewayTarget, type Target } from './lib/targets.js';
import { firstByteLatency, sequentialLatency } from './lib/latency.js';
import { throughput } from './lib/load.js';
import { abortProbe, chunkTiming, openStreams } from './lib/stream.js';
import { limiterCost } from './lib/limiter-bench.js';
import { installPeer, PEER_VERSION, startPeer, type Peer } from './lib/peer.js';
import { evaluateGoals, renderText, writeResults, type BenchResults } from './lib/report.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick') || process.env.BENCH_QUICK === '1';
const num = (name: string, full: number, small: number) => Number(process.env[name] ?? (quick ? small : full));
const list = (name: string, full: string) => (process.env[name] ?? full).split(',').map((s) => Number(s.trim())).filter((n) => n > 0);

const settings = {
  sequentialRounds: num('BENCH_ROUNDS', 2000, 200),
  sequentialWarmup: num('BENCH_WARMUP', 300, 50),
  firstByteRounds: num('BENCH_TTFB_ROUNDS', 300, 50),
  connections: list('BENCH_CONNECTIONS', '1,32,256').join('/'),
  loadSeconds: num('BENCH_LOAD_SECONDS', 3, 1),
  loadRounds: num('BENCH_LOAD_ROUNDS', 3, 1),
  loadWarmupSeconds: num('BENCH_LOAD_WARMUP_SECONDS', 1, 0.5),
  streamRounds: num('BENCH_STREAM_ROUNDS', 3, 1),
  openStreams: num('BENCH_STREAMS', 1000, 200),
  abortedStreams: num('BENCH_ABORTED_STREAMS', 5, 2),
  abortWatchSeconds: num('BENCH_ABORT_WATCH_S', 8, 4),
  limiterEvents: list('BENCH_LIMITER_EVENTS', '10,10000,1000000').join('/'),
  limiterReserves: num('BENCH_LIMITER_RESERVES', 20000, 2000),
  gatewayLogLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
  limits: 'hourly + daily on (1e9 each), count=all, usage recorded',
  peer: !(args.has('--no-peer') || process.env.BENCH_PEER === '0'),
  deadlineSeconds: num('BENCH_DEADLINE_S', 330, 120),
};
const connectionCounts = settings.connections.split('/').map(Number);

function gitRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${rev} + uncommitted changes in src/` : rev;
  } catch {
    return 'unknown';
  }
}

const startedAt = Date.now();
const results: BenchResults = {
  meta: {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    os: `${type()} ${release()}`,
    revision: gitRevision(),
    loadAvgStart: loadavg(),
    settings,
    notes: [],
  },
  limiter: [],
  throughput: [],
  memory: { idleFreshMb: null, idleAfterLoadMb: null },
  workers: [],
  goals: [],
};
const note = (text: string) => {
  results.meta.notes.push(text);
  console.error(`bench: ${text}`);
};
const step = (text: string) => console.error(`bench: [${((Date.now() - startedAt) / 1000).toFixed(0)} s] ${text}`);
let peerNote = 'peer skipped (--no-peer)';

function finish(): string[] {
  results.meta.loadAvgEnd = loadavg();
  results.meta.durationSeconds = (Date.now() - startedAt) / 1000;
  results.goals = evaluateGoals(results, peerNote);
  console.log(`\n${renderText(results)}\n`);
  return writeResults(join(ROOT, 'bench', 'results'), results);
}

const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-'));
guardChildren(settings.deadlineSeconds * 1000, (reason) => {
  note(`ABORTED: ${reason}; figures below are partial`);
  try {
    finish();
  } catch {
    // best effort
  }
  rmSync(dir, { recursive: true, force: true });
});

async function main(): Promise<void> {
  const fdLimit = openFilesLimit();
  if (fdLimit !== null && fdLimit < settings.openStreams * 3 + 200) note(`open-files limit ${fdLimit} may be too low for ${settings.openStreams} streams`);
  if (settings.gatewayLogLevel !== 'info') note(`gateway runs with LOG_LEVEL=${settings.gatewayLogLevel} (the default is info; BENCH_LOG_LEVEL changes it)`);
  note('load generator, mock, gateway and peer share this machine\'s CPUs; compare ratios, not absolute figures');

  step(buildIfStale(args.has('--build')));

  for (const kind of ['memory', 'sqlite'] as const) {
    for (const events of settings.limiterEvents.split('/').map(Number)) {
      step(`limiter (${kind}): ${events.toLocaleString('en-US')} events in the window`);
      results.limiter.push(await limiterCost(kind, dir, events, settings.limiterReserves));
    }
  }

  step('starting the mock upstream and the gateway (1 worker)');
  const mock = await startMock(dir);
  const gw = await startGateway(mock.port, dir, { workers: 1, logLevel: settings.gatewayLogLevel, name: 'gateway-1w' });
  results.memory.idleFreshMb = rssMb(gw.child.proc.pid);
  const direct = directTarget(mock.port);
  const gateway = gatewayTarget(gw.port);

  let peer: Peer | null = null;
  if (settings.peer) {
    try {
      step(`peer: Portkey ${PEER_VERSION}: ${await installPeer()}`);
      peer = await startPeer(mock.port, dir);
      peerNote = 'peer measured';
    } catch (err) {
      peerNote = `Portkey unavailable: ${(err as Error).message.split('\n')[0]}`;
      note(peerNote);
    }
  }
  const all: Target[] = [direct, gateway, ...(peer ? [peer.target] : [])];

  step(`sequential latency: ${settings.sequentialRounds} rounds`);
  results.sequential = await sequentialLatency(all, settings.sequentialRounds, settings.sequentialWarmup);
  step(`streaming time to first byte: ${settings.firstByteRounds} rounds`);
  results.firstByte = await firstByteLatency(all, settings.firstByteRounds, Math.min(50, settings.firstByteRounds));
  step(`streaming chunk spacing: ${settings.streamRounds} streams of 200 chunks per target`);
  results.chunkTiming = await chunkTiming(all, settings.streamRounds);

  for (const connections of connectionCounts) {
    const targets = connections === 32 ? all : [direct, gateway];
    step(`throughput at ${connections} connections: ${targets.map((t) => t.name).join(', ')}`);
    results.throughput.push(...(await throughput(targets, connections, settings.loadRounds, settings.loadSeconds, settings.loadWarmupSeconds)));
  }

  step('workers: starting a gateway with PROXYGPT_WORKERS=2');
  const gw2 = await startGateway(mock.port, dir, { workers: 2, logLevel: settings.gatewayLogLevel, name: 'gateway-2w' });
  const two = gatewayTarget(gw2.port, 'gateway-2w');
  step('workers: 1 vs 2 at 32 connections');
  results.workers = await throughput([gatewayTarget(gw.port, 'gateway-1w'), two], 32, settings.loadRounds, settings.loadSeconds, settings.loadWarmupSeconds);
  await stopChild(gw2.child);

  // Bursts of open streams come last: afterwards Node's heap is sized differently (in the gateway,
  // the peer and the mock alike), which would colour every later throughput figure.
  const streamOptions = { holdMs: 2000, waitMs: 10_000, finish: () => mock.child.proc.send?.('finish-streams') };
  results.memory.idleAfterLoadMb = rssMb(gw.child.proc.pid);
  step(`memory: ${settings.openStreams} open streams through the gateway, after the load runs`);
  results.memory.gateway = await openStreams(gateway, gw.child.proc.pid, settings.openStreams, streamOptions);
  if (peer) {
    step(`memory: ${settings.openStreams} open streams through Portkey`);
    results.memory.peer = await openStreams(peer.target, peer.child.proc.pid, settings.openStreams, streamOptions);
    await stopChild(peer.child);
  }
  step(`memory: ${settings.openStreams} open streams through a fresh gateway of their own`);
  const fresh = await startGateway(mock.port, dir, { workers: 1, logLevel: settings.gatewayLogLevel, name: 'gateway-fresh' });
  results.memory.gatewayFresh = await openStreams(gatewayTarget(fresh.port), fresh.child.proc.pid, settings.openStreams, streamOptions);
  await stopChild(fresh.child);

  if (settings.abortedStreams > 0) {
    step(`clients leaving mid-stream: ${settings.abortedStreams} aborted streams, then one call`);
    results.memory.abortProbe = await abortProbe(gateway, gw.child.proc.pid, settings.abortedStreams, settings.abortWatchSeconds * 1000);
  }

  await stopAll();
  const written = finish();
  console.log(`Written: ${written.map((p) => p.slice(ROOT.length + 1)).join(', ')}`);
}

try {
  await main();
} catch (err) {
  note(`FAILED: ${(err as Error).stack ?? String(err)}`);
  await stopAll();
  finish();
  process.exitCode = 1;
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
