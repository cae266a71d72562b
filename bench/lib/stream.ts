/**
 * Streaming: whether chunk timing survives the gateway, and memory with many open streams.
 *
 * Chunk timing: the mock sends a role chunk, then 200 content chunks 5 ms apart; the bench stamps
 * the arrival of each SSE event (events that arrive in one read share a stamp) and looks at the
 * 200 gaps from the role chunk to the last content chunk. Same spacing as direct = preserved;
 * gaps under 1 ms = "bursts" (events held back and released together).
 *
 * Open streams: N slow streams are opened (at once, or in batches for thousands) and held; once
 * they flow (or after a timeout), the serving process tree's VmRSS is sampled; then the mock ends
 * them all normally. Memory per open stream = (RSS with N open − RSS before) / N flowing.
 * Abort probe: a few clients leave mid-stream; how long until the next call is answered.
 */
import { setMaxListeners } from 'node:events';
import { Agent, request } from 'undici';
import { CHAT_PATH, chatBody, type Target } from './targets.js';
import { rotate, summarise, type Summary } from './stats.js';
import { rssMb, sleep } from './procs.js';
import { treeRssMb } from './cpu.js';

export interface ChunkTiming {
  target: string;
  streams: number;
  /** Gaps between consecutive events (role chunk .. last content chunk), in ms, all streams pooled. */
  gaps: Summary;
  /** Gaps under 1 ms, over all streams. */
  bursts: number;
  /** Gaps counted, over all streams. */
  gapCount: number;
  /** Events that arrived per stream (the first one's count). */
  events: number;
}

async function timeEvents(target: Target, chunks: number, gapMs: number): Promise<number[]> {
  const res = await request(target.origin + CHAT_PATH, {
    method: 'POST',
    headers: { ...target.headers, 'x-mock-chunks': String(chunks), 'x-mock-chunk-delay-ms': String(gapMs) },
    body: chatBody(true),
  });
  if (res.statusCode !== 200) throw new Error(`${target.name} answered ${res.statusCode} to a stream`);
  const stamps: number[] = [];
  let pending = '';
  for await (const chunk of res.body) {
    const now = performance.now();
    pending += (chunk as Buffer).toString('utf8');
    const events = pending.split('\n\n');
    pending = events.pop()!;
    for (const event of events) if (event.startsWith('data:')) stamps.push(now);
  }
  return stamps;
}

export async function chunkTiming(targets: Target[], rounds: number, chunks = 200, gapMs = 5): Promise<ChunkTiming[]> {
  const gaps = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const events = new Map<string, number>();
  for (let r = 0; r < rounds; r++) {
    for (const target of rotate(targets, r)) {
      const stamps = await timeEvents(target, chunks, gapMs);
      if (!events.has(target.name)) events.set(target.name, stamps.length);
      // role chunk + `chunks` content chunks: `chunks` gaps; the closing events come back to back by design.
      const own = gaps.get(target.name)!;
      for (let i = 1; i <= chunks && i < stamps.length; i++) own.push(stamps[i]! - stamps[i - 1]!);
    }
  }
  return targets.map((t) => {
    const own = gaps.get(t.name)!;
    return { target: t.name, streams: rounds, gaps: summarise(own), bursts: own.filter((g) => g < 1).length, gapCount: own.length, events: events.get(t.name) ?? 0 };
  });
}

export interface OpenStreams {
  target: string;
  requested: number;
  /** Streams that had delivered their first byte when RSS was read. */
  flowing: number;
  /** Streams that ended normally after the mock was told to finish them. */
  completed: number;
  failed: number;
  idleRssMb: number | null;
  /** Highest VmRSS seen while the streams were open. */
  openRssMb: number | null;
  /** Seconds from opening to all flowing (or the wait limit). */
  settleSeconds: number;
  /** (openRssMb − idleRssMb) / flowing, in KB; null when nothing flowed or RSS was unreadable. */
  kbPerStream: number | null;
  /** Streams opened at a time (`requested` when all at once). */
  batch: number;
  /** VmRSS once the first batch flowed (null when unreadable). */
  firstBatchRssMb: number | null;
  /** Opened in batches: (RSS once the first batch flowed − idleRssMb) / its streams, in KB; with one batch, as kbPerStream. */
  firstBatchKbPerStream: number | null;
  /**
   * Opened in batches: what each stream after the first batch added, in KB (RSS once the last
   * batch flowed − RSS once the first had, over the streams between), free of what the first
   * streams cost once (code compiled, the heap's first growth); null with one batch.
   */
  marginalKbPerStream: number | null;
}

/**
 * Opens `count` slow streams to `target` (one connection each: a chunk every `chunkDelayMs`, 500 by
 * default, far more chunks than the test lasts), `batch` at a time (all at once by default), each
 * batch given `waitMs` to flow; samples the VmRSS of the tree under `pid` (the process serving
 * them) for `holdMs` (`onHeld` is told when the holding starts), then calls `finish` (the mock ends every stream normally) and waits for them
 * to end; what is still open after that is aborted.
 */
export async function openStreams(
  target: Target,
  pid: number | undefined,
  count: number,
  options: { holdMs: number; waitMs: number; finish: () => void; batch?: number; chunkDelayMs?: number; onHeld?: () => void },
): Promise<OpenStreams> {
  const idleRssMb = treeRssMb(pid);
  const batch = Math.max(1, options.batch ?? count);
  const agent = new Agent({ connections: count + 16, keepAliveTimeout: 1000 });
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  let flowing = 0;
  let completed = 0;
  let failed = 0;
  const opened = Date.now();
  const open = async () => {
    try {
      const res = await request(target.origin + CHAT_PATH, {
        method: 'POST',
        headers: { ...target.headers, 'x-mock-chunks': '100000', 'x-mock-chunk-delay-ms': String(options.chunkDelayMs ?? 500) },
        body: chatBody(true),
        dispatcher: agent,
        signal: abort.signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      if (res.statusCode !== 200) {
        failed++;
        await res.body.dump();
        return;
      }
      let first = true;
      for await (const _chunk of res.body) {
        if (first) {
          first = false;
          flowing++;
        }
      }
      completed++;
    } catch {
      if (!abort.signal.aborted) failed++;
    }
  };
  const streams: Promise<void>[] = [];
  /** RSS and streams flowing once each batch flowed. */
  const batches: { rssMb: number; flowing: number }[] = [];
  while (streams.length < count) {
    const upTo = Math.min(count, streams.length + batch);
    while (streams.length < upTo) streams.push(open());
    const batchOpened = Date.now();
    while (flowing + failed < upTo && Date.now() - batchOpened < options.waitMs) await sleep(100);
    const rss = treeRssMb(pid);
    if (rss !== null) batches.push({ rssMb: rss, flowing });
    if (flowing + failed < upTo) break;
  }
  const first = batches[0];
  const last = batches.at(-1);
  const firstBatchKbPerStream = first === undefined || idleRssMb === null || first.flowing === 0 ? null : ((first.rssMb - idleRssMb) * 1024) / first.flowing;
  const marginalKbPerStream = first !== undefined && last !== undefined && last.flowing > first.flowing ? ((last.rssMb - first.rssMb) * 1024) / (last.flowing - first.flowing) : null;
  const settleSeconds = (Date.now() - opened) / 1000;
  options.onHeld?.();
  let openRssMb: number | null = null;
  const holdUntil = Date.now() + options.holdMs;
  while (Date.now() < holdUntil) {
    const rss = treeRssMb(pid);
    if (rss !== null) openRssMb = Math.max(openRssMb ?? 0, rss);
    await sleep(200);
  }
  const flowingAtRead = flowing;
  // Streams still queued behind others start later: keep asking until every one has ended.
  let allEnded = false;
  const ended = Promise.allSettled(streams).then(() => (allEnded = true));
  const finishBy = Date.now() + options.waitMs;
  while (!allEnded && Date.now() < finishBy) {
    options.finish();
    await sleep(200);
  }
  abort.abort();
  await ended;
  await agent.destroy();
  const kbPerStream = idleRssMb === null || openRssMb === null || flowingAtRead === 0 ? null : ((openRssMb - idleRssMb) * 1024) / flowingAtRead;
  return {
    target: target.name,
    requested: count,
    batch,
    firstBatchRssMb: first?.rssMb ?? null,
    flowing: flowingAtRead,
    completed,
    failed,
    idleRssMb,
    openRssMb,
    settleSeconds,
    kbPerStream,
    firstBatchKbPerStream: batches.length > 1 ? firstBatchKbPerStream : kbPerStream,
    marginalKbPerStream,
  };
}

export interface AbortProbe {
  aborted: number;
  /** Seconds the calls were watched after the aborts. */
  watchedSeconds: number;
  calls: number;
  /** The longest any one call (sent back to back) took during the watch, in seconds. */
  longestCallSeconds: number | null;
  failedCalls: number;
  rssBeforeMb: number | null;
  /** Highest VmRSS seen during the watch. */
  rssPeakMb: number | null;
}

/**
 * Clients that go away mid-stream: opens `count` slow streams, aborts them once they flow, then
 * for `watchMs` sends ordinary calls back to back (timing the slowest) while sampling the serving
 * process's RSS: what the settling of aborted streams costs everyone else.
 */
export async function abortProbe(target: Target, pid: number | undefined, count: number, watchMs: number): Promise<AbortProbe> {
  const rssBeforeMb = rssMb(pid);
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  let flowing = 0;
  const streams = Array.from({ length: count }, async () => {
    try {
      const res = await request(target.origin + CHAT_PATH, {
        method: 'POST',
        headers: { ...target.headers, 'x-mock-chunks': '100000', 'x-mock-chunk-delay-ms': '200' },
        body: chatBody(true),
        signal: abort.signal,
      });
      let first = true;
      for await (const _chunk of res.body) {
        if (first) {
          first = false;
          flowing++;
        }
      }
    } catch {
      // aborted
    }
  });
  const opened = Date.now();
  while (flowing < count && Date.now() - opened < 5000) await sleep(50);
  abort.abort();
  await Promise.allSettled(streams);

  let rssPeakMb = rssBeforeMb;
  let watching = true;
  const sampler = (async () => {
    while (watching) {
      rssPeakMb = Math.max(rssPeakMb ?? 0, rssMb(pid) ?? 0);
      await sleep(100);
    }
  })();
  const start = Date.now();
  let calls = 0;
  let failedCalls = 0;
  let longest = 0;
  while (Date.now() - start < watchMs) {
    const t = performance.now();
    try {
      const res = await request(target.origin + CHAT_PATH, { method: 'POST', headers: target.headers, body: chatBody(), headersTimeout: 30_000, bodyTimeout: 30_000 });
      await res.body.dump();
      if (res.statusCode !== 200) failedCalls++;
    } catch {
      failedCalls++;
    }
    calls++;
    longest = Math.max(longest, (performance.now() - t) / 1000);
    await sleep(20);
  }
  watching = false;
  await sampler;
  return { aborted: count, watchedSeconds: (Date.now() - start) / 1000, calls, longestCallSeconds: calls > 0 ? longest : null, failedCalls, rssBeforeMb, rssPeakMb };
}
