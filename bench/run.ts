/**
 * `npm run bench`: what the gateway costs, side by side with the direct call to the mock upstream,
 * the floor of any proxy (a bare Node pass-through, and nginx when installed) and (when it can be
 * installed) a peer gateway, Portkey 1.15.2, in one run; the gateway both with an environment key
 * and with a metered stored key (the common team set-up). Requests/s, CPU time per call of each
 * serving process, memory per open stream. See bench/README.md.
 *
 * Flags: --no-peer (or BENCH_PEER=0) skips the peer; --no-nginx (or BENCH_NGINX=0) skips nginx;
 * --build rebuilds dist/ even when up to date; --quick (or BENCH_QUICK=1) uses small round counts
 * (a smoke run of a few seconds per part). Every count and duration can be set by an environment
 * variable (BENCH_*, listed in `settings` below).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, type } from 'node:os';
import { join } from 'node:path';
import { buildIfStale, createStoredKey, keyUsage, ROOT, startGateway, startMock, startPassThrough } from './lib/services.js';
import { guardChildren, openFilesLimit, rssMb, settledRss, sleep, stopAll, stopChild } from './lib/procs.js';
import { directTarget, gatewayTarget, passThroughTarget, type Target } from './lib/targets.js';
import { findNginx, nginxVersion, startNginx } from './lib/nginx.js';
import { relaunchWithOpenFiles } from './lib/fdlimit.js';
import { clockTicksPerSecond } from './lib/cpu.js';
import { firstByteLatency, sequentialLatency } from './lib/latency.js';
import { cannon, throughput } from './lib/load.js';
import { abortProbe, chunkTiming, openStreams } from './lib/stream.js';
import { limiterCost } from './lib/limiter-bench.js';
import { installPeer, PEER_VERSION, startPeer, type Peer } from './lib/peer.js';
import { evaluateGoals, renderText, writeResults, type BenchResults } from './lib/report.js';
import { scaleOut, scaleOutAvailable } from './lib/scale-out.js';

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
  workersWarmupSeconds: num('BENCH_WORKERS_WARMUP_S', 5, 2),
  // Two workers' CPU per call is judged against a 1.15× goal: three rounds moved it 1.09–1.40×.
  workersRounds: num('BENCH_WORKERS_ROUNDS', 8, 1),
  streamRounds: num('BENCH_STREAM_ROUNDS', 3, 1),
  openStreams: num('BENCH_STREAMS', 1000, 200),
  streamBatches: num('BENCH_STREAM_BATCHES', 3, 2),
  manyStreams: num('BENCH_MANY_STREAMS', 8000, 2000),
  abortedStreams: num('BENCH_ABORTED_STREAMS', 5, 2),
  abortWatchSeconds: num('BENCH_ABORT_WATCH_S', 8, 4),
  limiterEvents: list('BENCH_LIMITER_EVENTS', '10,10000,1000000').join('/'),
  limiterReserves: num('BENCH_LIMITER_RESERVES', 20000, 2000),
  gatewayLogLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
  limits: 'hourly + daily on (1e9 each), count=all, usage recorded',
  storedKey: 'requests and tokens per hour and day (1e9 requests, 1e12 tokens)',
  peer: !(args.has('--no-peer') || process.env.BENCH_PEER === '0'),
  nginx: !(args.has('--no-nginx') || process.env.BENCH_NGINX === '0'),
  scaleOut: !(args.has('--no-scale-out') || process.env.BENCH_SCALE_OUT === '0'),
  postgresUrl: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  deadlineSeconds: num('BENCH_DEADLINE_S', 900, 300),
};
const connectionCounts = settings.connections.split('/').map(Number);

// Thousands of open streams need open files: start again with a raised limit when it is low.
const FD_WANTED = 20_000;
const relaunched = await relaunchWithOpenFiles(Math.min(FD_WANTED, Math.max(settings.manyStreams, settings.openStreams) * 2 + 500));
if (relaunched !== null) process.exit(relaunched);

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
  cpuTicksPerSecond: clockTicksPerSecond(),
  workers: [],
  goals: [],
};
const note = (text: string) => {
  results.meta.notes.push(text);
  console.error(`bench: ${text}`);
};
const step = (text: string) => console.error(`bench: [${((Date.now() - startedAt) / 1000).toFixed(0)} s] ${text}`);
let peerNote = 'peer skipped (--no-peer)';
let nginxNote = 'nginx skipped (--no-nginx)';

function finish(): string[] {
  results.meta.loadAvgEnd = loadavg();
  results.meta.durationSeconds = (Date.now() - startedAt) / 1000;
  results.goals = evaluateGoals(results, peerNote, nginxNote);
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
  results.meta.openFilesLimit = fdLimit === Infinity ? 'unlimited' : (fdLimit ?? 'unknown');
  if (fdLimit !== null && fdLimit < settings.openStreams * 3 + 200) note(`open-files limit ${fdLimit} may be too low for ${settings.openStreams} streams`);
  // The proxy holds two descriptors per stream (client and upstream), the load generator and the mock one each.
  if (fdLimit !== null && fdLimit < settings.manyStreams * 2 + 200) {
    const fits = Math.max(0, Math.floor((fdLimit - 200) / 2));
    note(`open-files limit ${fdLimit} (could not be raised) holds ${fits} streams through a proxy, not ${settings.manyStreams}: the many-streams phase opens ${fits}`);
    settings.manyStreams = fits;
  }
  if (settings.gatewayLogLevel !== 'info') note(`gateway runs with LOG_LEVEL=${settings.gatewayLogLevel} (the default is info; BENCH_LOG_LEVEL changes it)`);
  note("load generator, mock, gateway, floor proxies and peer share this machine's CPUs; compare ratios and CPU per call, not absolute requests/s");

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
  const direct = directTarget(mock.port, mock.child.proc.pid);
  const gateway = gatewayTarget(gw.port, 'gateway', gw.child.proc.pid);
  step('stored key with request and token limits (the common team set-up), over the admin API');
  const stored = gatewayTarget(gw.port, 'gateway-stored', gw.child.proc.pid, await createStoredKey(gw.port));

  step('the floor: a bare Node pass-through (node:http + one undici pool)');
  const bare = await startPassThrough(mock.port, dir);
  const bareNode = passThroughTarget('bare-node', bare.port, bare.child.proc.pid);
  let nginx: Target | null = null;
  let nginxChild: Awaited<ReturnType<typeof startNginx>>['child'] | null = null;
  if (settings.nginx) {
    const bin = findNginx();
    if (bin === null) {
      nginxNote = 'nginx not installed (apt-get install -y nginx-light): the nginx floor is skipped';
      note(nginxNote);
    } else {
      try {
        const started = await startNginx(bin, mock.port, dir);
        nginx = passThroughTarget('nginx', started.port, started.child.proc.pid);
        nginxChild = started.child;
        nginxNote = `nginx ${nginxVersion(bin)} measured`;
        results.meta.nginx = nginxVersion(bin);
        step(`the floor: ${nginxNote.replace(' measured', '')}, proxy_pass with upstream keep-alive, 1 worker process`);
      } catch (err) {
        nginxNote = `nginx did not start: ${(err as Error).message.split('\n')[0]}`;
        note(nginxNote);
      }
    }
  }

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
  const all: Target[] = [direct, gateway, stored, bareNode, ...(nginx ? [nginx] : []), ...(peer ? [peer.target] : [])];

  step(`sequential latency: ${settings.sequentialRounds} rounds`);
  results.sequential = await sequentialLatency(all, settings.sequentialRounds, settings.sequentialWarmup);
  step(`streaming time to first byte: ${settings.firstByteRounds} rounds`);
  results.firstByte = await firstByteLatency(all, settings.firstByteRounds, Math.min(50, settings.firstByteRounds));
  step(`streaming chunk spacing: ${settings.streamRounds} streams of 200 chunks per target`);
  results.chunkTiming = await chunkTiming(all, settings.streamRounds);

  for (const connections of connectionCounts) {
    const targets = connections === 32 ? all : [direct, gateway];
    step(`throughput and CPU per call at ${connections} connections: ${targets.map((t) => t.name).join(', ')}`);
    results.throughput.push(...(await throughput(targets, connections, settings.loadRounds, settings.loadSeconds, settings.loadWarmupSeconds)));
  }

  await sleep(1500); // the usage recorder writes in batches
  try {
    const usage = await keyUsage(gw.port);
    const answered = results.throughput.filter((l) => l.target === 'gateway-stored').reduce((n, l) => n + l.requests, 0);
    results.meta.storedKeyUsage = `${usage.requests.toLocaleString('en-US')} requests recorded (${answered.toLocaleString('en-US')} answered in the measured load rounds alone), ${usage.total_tokens.toLocaleString('en-US')} tokens, $${usage.usd}`;
    step(`stored key metered: ${results.meta.storedKeyUsage}`);
  } catch (err) {
    note(`stored key usage could not be read: ${(err as Error).message}`);
  }

  step('workers: starting a gateway with PROXYGPT_WORKERS=2');
  const gw2 = await startGateway(mock.port, dir, { workers: 2, logLevel: settings.gatewayLogLevel, name: 'gateway-2w' });
  const two = gatewayTarget(gw2.port, 'gateway-2w', gw2.child.proc.pid);
  // A fresh process costs several times more CPU per call until its code is optimised; the
  // 1-worker gateway has served the whole run by now, so the new one is warmed up first.
  step(`workers: warming up the new gateway for ${settings.workersWarmupSeconds} s`);
  await cannon(two, 32, settings.workersWarmupSeconds, false);
  step('workers: 1 vs 2 at 32 connections (CPU: the primary and its workers)');
  results.workers = await throughput([gatewayTarget(gw.port, 'gateway-1w', gw.child.proc.pid), two], 32, settings.workersRounds, settings.loadSeconds, settings.loadWarmupSeconds);
  await stopChild(gw2.child);

  if (settings.scaleOut) {
    const missing = await scaleOutAvailable(settings.postgresUrl, settings.redisUrl);
    if (missing !== null) note(`scale-out skipped: ${missing} (BENCH_POSTGRES_URL, BENCH_REDIS_URL)`);
    else {
      results.scaleOut = await scaleOut(
        mock.port,
        dir,
        { postgresUrl: settings.postgresUrl, redisUrl: settings.redisUrl, rounds: settings.loadRounds, seconds: settings.loadSeconds, warmupSeconds: Math.max(2, settings.loadWarmupSeconds * 2), logLevel: settings.gatewayLogLevel },
        step,
      );
    }
  }

  // Bursts of open streams come last: afterwards Node's heap is sized differently (in the gateway,
  // the peer and the mock alike), which would colour every later throughput figure.
  const streamOptions = { holdMs: 2000, waitMs: 10_000, finish: () => mock.child.proc.send?.('finish-streams') };
  const held = (what: string) => `memory: ${settings.openStreams} open streams through ${what}`;
  // A fresh process: its streams opened a batch at a time; what each stream past the first batch
  // adds is what an open stream costs (the first batch also pays the heap's first growth).
  const batched = (what: string) => `memory: ${settings.streamBatches} × ${settings.openStreams} open streams through ${what}`;
  const freshCount = settings.openStreams * settings.streamBatches;
  const freshOptions = { ...streamOptions, batch: settings.openStreams };
  step('memory: the gateway idle after the load runs, until its RSS stops falling (up to 90 s)');
  const idle = await settledRss(gw.child.proc.pid);
  results.memory.idleAfterLoadFirstMb = idle.firstMb;
  results.memory.idleAfterLoadMb = idle.settledMb;
  results.memory.idleAfterLoadS = idle.afterMs / 1000;
  step(held('the gateway (environment key), after the load runs'));
  results.memory.gateway = await openStreams(gateway, gw.child.proc.pid, settings.openStreams, streamOptions);
  await stopChild(bare.child);
  if (nginxChild) await stopChild(nginxChild);
  if (peer) {
    step(held('Portkey, after the load runs'));
    results.memory.peer = await openStreams(peer.target, peer.child.proc.pid, settings.openStreams, streamOptions);
    await stopChild(peer.child);
  }
  if (settings.abortedStreams > 0) {
    step(`clients leaving mid-stream: ${settings.abortedStreams} aborted streams, then one call`);
    results.memory.abortProbe = await abortProbe(gateway, gw.child.proc.pid, settings.abortedStreams, settings.abortWatchSeconds * 1000);
  }
  await stopChild(gw.child);

  // Memory per open stream, every target alike: a fresh process of its own, (RSS with N open −
  // RSS before) / N. A process that served the load keeps its grown heap, and streams then fill
  // free heap first: after the load, the difference says little.
  const gatewayFresh = async (name: string, storedKey: boolean) => {
    const g = await startGateway(mock.port, dir, { workers: 1, logLevel: settings.gatewayLogLevel, name });
    const key = storedKey ? await createStoredKey(g.port) : undefined;
    return { child: g.child, target: gatewayTarget(g.port, storedKey ? 'gateway-stored' : 'gateway', g.child.proc.pid, key) };
  };
  step(batched('a fresh gateway (environment key)'));
  let g = await gatewayFresh('gateway-fresh', false);
  results.memory.gatewayFresh = await openStreams(g.target, g.target.pid, freshCount, freshOptions);
  await stopChild(g.child);
  step(batched('a fresh gateway (metered stored key)'));
  g = await gatewayFresh('gateway-stored-fresh', true);
  results.memory.gatewayStored = await openStreams(g.target, g.target.pid, freshCount, freshOptions);
  await stopChild(g.child);
  step(batched('a fresh bare Node pass-through'));
  const bareFresh = await startPassThrough(mock.port, dir, 'bare-node-fresh');
  results.memory.bareNode = await openStreams(passThroughTarget('bare-node', bareFresh.port), bareFresh.child.proc.pid, freshCount, freshOptions);
  await stopChild(bareFresh.child);
  const nginxBin = nginx ? findNginx() : null;
  if (nginxBin) {
    step(batched('a fresh nginx (master + worker)'));
    const ng = await startNginx(nginxBin, mock.port, dir, 'nginx-fresh');
    results.memory.nginx = await openStreams(passThroughTarget('nginx', ng.port), ng.child.proc.pid, freshCount, freshOptions);
    await stopChild(ng.child);
  }
  if (peer) {
    step(batched('a fresh Portkey'));
    const p = await startPeer(mock.port, dir);
    results.memory.peerFresh = await openStreams(p.target, p.child.proc.pid, freshCount, freshOptions);
    await stopChild(p.child);
  }
  if (settings.manyStreams > 0) {
    // 1,000 at a time, so the listen backlog is never the limit; a chunk every 5 s per stream (at
    // a chunk a second, relaying 8,000 chunks/s saturates a busy 2-core machine and the last
    // thousands never start within the wait).
    step(`memory: ${settings.manyStreams} open streams through a fresh gateway (metered stored key), 1,000 at a time`);
    g = await gatewayFresh('gateway-many', true);
    results.memory.gatewayMany = await openStreams(g.target, g.target.pid, settings.manyStreams, { ...streamOptions, waitMs: 30_000, batch: 1000, chunkDelayMs: 5000 });
    await stopChild(g.child);
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
