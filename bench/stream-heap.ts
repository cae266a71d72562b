/**
 * What an open stream holds on the JavaScript heap, by kind of object: `npx tsx bench/stream-heap.ts
 * [streams]` (default 2,000). Starts the mock, the gateway (metered stored key, as the bench's
 * many-streams phase) and the bare Node pass-through, each under `--heapsnapshot-signal`; for each,
 * takes a heap snapshot, opens the streams (a chunk every 5 s, held), takes another, and prints the
 * heap per open stream with the kinds of object that grew most. RSS per stream (what the bench
 * reports) also holds what is outside the heap: socket buffers, the allocator's slack.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIfStale, createStoredKey, startGateway, startMock, startPassThrough } from './lib/services.js';
import { guardChildren, rssMb, sleep, stopAll } from './lib/procs.js';
import { gatewayTarget, passThroughTarget, type Target } from './lib/targets.js';
import { openStreams } from './lib/stream.js';
import { heapGrowth } from './lib/heap-snapshot.js';

const streams = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'proxygpt-stream-heap-'));
guardChildren(600_000, (reason) => console.error(`stream-heap: ABORTED: ${reason}`));

/** Signals `pid` to write a heap snapshot into `into` and waits until the file is complete. */
async function snapshot(pid: number, into: string): Promise<string> {
  const before = new Set(readdirSync(into));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await sleep(500);
    const file = readdirSync(into).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file === undefined) continue;
    let size = -1;
    while (size !== statSync(join(into, file)).size) {
      size = statSync(join(into, file)).size;
      await sleep(1000);
    }
    return join(into, file);
  }
}

async function measure(label: string, target: Target, pid: number, snapshots: string, finish: () => void): Promise<void> {
  const before = await snapshot(pid, snapshots);
  const idleRss = rssMb(pid);
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  // Held long enough for the second snapshot, taken once every stream flows.
  const run = openStreams(target, pid, streams, { holdMs: 30_000, waitMs: 60_000, batch: 1000, chunkDelayMs: 5000, finish, onHeld: () => held() });
  await holding;
  const openRss = rssMb(pid);
  const after = await snapshot(pid, snapshots);
  const result = await run;
  const growth = heapGrowth(before, after, result.flowing);
  const rssKb = idleRss === null || openRss === null ? NaN : ((openRss - idleRss) * 1024) / result.flowing;
  console.log(`\n${label}: ${result.flowing} of ${streams} streams flowing; RSS ${idleRss?.toFixed(0)} -> ${openRss?.toFixed(0)} MB (${rssKb.toFixed(1)} KB per stream); heap ${(growth.bytesPerUnit / 1024).toFixed(1)} KB per stream, of which:`);
  for (const row of growth.top) console.log(`  ${row.bytes.toFixed(0).padStart(6)} B  ${row.objects.toFixed(1).padStart(5)} objects  ${row.kind.slice(0, 70)}`);
}

try {
  console.error(`stream-heap: ${buildIfStale(process.argv.includes('--build'))}`);
  const mock = await startMock(dir);
  const finish = () => mock.child.proc.send?.('finish-streams');
  const flags = (name: string) => {
    const into = join(dir, name);
    return { into, flags: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${into}`] };
  };
  const gwSnaps = flags('gateway');
  const gw = await startGateway(mock.port, dir, { workers: 1, logLevel: 'warn', nodeFlags: gwSnaps.flags, name: 'gateway-heap' });
  mkdirSync(gwSnaps.into, { recursive: true });
  const key = await createStoredKey(gw.port);
  await measure('gateway, metered stored key', gatewayTarget(gw.port, 'gateway', gw.child.proc.pid, key), gw.child.proc.pid!, gwSnaps.into, finish);
  const bareSnaps = flags('bare');
  mkdirSync(bareSnaps.into, { recursive: true });
  const bare = await startPassThrough(mock.port, dir, 'bare-node-heap', bareSnaps.flags);
  await measure('bare Node pass-through', passThroughTarget('bare-node', bare.port, bare.child.proc.pid), bare.child.proc.pid!, bareSnaps.into, finish);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
