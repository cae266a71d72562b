/**
 * The report: the figures as tables (aligned text for the terminal, Markdown for the file): every
 * target side by side (requests/s, CPU time per call, ratios to the bare Node floor, memory per
 * open stream), every goal (issue 4's, and what a call costs) with PASS/MISS, and all raw figures
 * as JSON. Files go to bench/results/ as <timestamp>.md/.json plus latest.md/latest.json.
 */
import type { ScaleOutFigures } from './scale-out.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LatencyResult } from './latency.js';
import type { LoadFigures } from './load.js';
import type { AbortProbe, ChunkTiming, OpenStreams } from './stream.js';
import type { LimiterFigures } from './limiter-bench.js';

export interface Meta {
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  os: string;
  /** Git revision of the gateway measured. */
  revision: string;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
  durationSeconds?: number;
  settings: Record<string, string | number | boolean>;
  /** Soft limit on open files the run had. */
  openFilesLimit?: number | string;
  /** nginx version when it was measured. */
  nginx?: string;
  /** What the gateway recorded for the metered stored key (GET /admin/usage). */
  storedKeyUsage?: string;
  notes: string[];
}

export interface BenchResults {
  meta: Meta;
  limiter: LimiterFigures[];
  sequential?: LatencyResult;
  firstByte?: LatencyResult;
  chunkTiming?: ChunkTiming[];
  throughput: LoadFigures[];
  memory: {
    idleFreshMb: number | null;
    /** Once it stopped falling (settledRss); `idleAfterLoadFirstMb` right when the load ended, `idleAfterLoadS` how long it took. */
    idleAfterLoadMb: number | null;
    idleAfterLoadFirstMb?: number | null;
    idleAfterLoadS?: number;
    /** Open streams through a fresh gateway (environment key), and through the one that served the load. */
    gatewayFresh?: OpenStreams;
    gateway?: OpenStreams;
    /** Through a fresh gateway with the metered stored key. */
    gatewayStored?: OpenStreams;
    /** Thousands of streams (8,000 by default) through a fresh gateway with the stored key. */
    gatewayMany?: OpenStreams;
    /** Fresh processes of their own. */
    bareNode?: OpenStreams;
    nginx?: OpenStreams;
    peerFresh?: OpenStreams;
    /** Through the Portkey that served the load. */
    peer?: OpenStreams;
    abortProbe?: AbortProbe;
  };
  workers: LoadFigures[];
  /** Several instances on Postgres + Redis against one on SQLite (bench/lib/scale-out.ts). */
  scaleOut?: ScaleOutFigures[];
  /** Clock ticks per second of /proc's utime and stime (CPU time resolution). */
  cpuTicksPerSecond?: number;
  goals: Goal[];
}

export interface Goal {
  /** Which list the goal belongs to. */
  group?: string;
  goal: string;
  figure: string;
  status: 'PASS' | 'MISS' | 'n/a';
}

/** The side-by-side table's targets, in order, with what each stands for. */
const TARGETS: [name: string, label: string][] = [
  ['direct', 'the mock upstream itself (direct)'],
  ['gateway', 'gateway, environment key'],
  ['gateway-stored', 'gateway, metered stored key'],
  ['bare-node', 'bare Node pass-through (floor)'],
  ['nginx', 'nginx proxy_pass (floor)'],
  ['portkey', 'Portkey gateway'],
];

type Table = { title: string; head: string[]; rows: string[][]; note?: string };

const f = (value: number | null | undefined, digits = 2) => (value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits));
const x = (value: number | null | undefined) => (value === null || value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(2)}×`);
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || b === 0 ? null : a / b);

function load(all: LoadFigures[], target: string, connections: number): LoadFigures | undefined {
  return all.find((l) => l.target === target && l.connections === connections);
}

/** The open-streams phase that stands for a target in the side-by-side table: a fresh process of its own. */
function streamsOf(r: BenchResults, target: string): OpenStreams | undefined {
  const m = r.memory;
  return ({ gateway: m.gatewayFresh, 'gateway-stored': m.gatewayStored, 'bare-node': m.bareNode, nginx: m.nginx, portkey: m.peerFresh } as Record<string, OpenStreams | undefined>)[target];
}

const sub = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null ? null : a - b);
const us = (v: number | null | undefined) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(0));
const kb = (o: OpenStreams | undefined, unit = '') =>
  o?.kbPerStream == null ? '–' : `${o.kbPerStream.toFixed(1)}${unit}${o.flowing < o.requested ? ` (${o.flowing}/${o.requested} flowing)` : ''}`;
/** What one more open stream costs: past the first batch when opened in batches, else the average. */
const perStream = (o: OpenStreams | undefined): number | null | undefined => o?.marginalKbPerStream ?? o?.kbPerStream;
const perStreamKb = (o: OpenStreams | undefined, unit = '') => {
  const v = perStream(o);
  return v == null || o === undefined ? '–' : `${v.toFixed(1)}${unit}${o.flowing < o.requested ? ` (${o.flowing}/${o.requested} flowing)` : ''}`;
};
const batches = (o: OpenStreams) => `${o.batch.toLocaleString('en-US')}`;

export function evaluateGoals(r: BenchResults, peerNote: string, nginxNote = ''): Goal[] {
  const goal = (name: string, value: number | null | undefined, ok: (v: number) => boolean, figure: (v: number) => string, missing = 'not measured'): Goal =>
    value === null || value === undefined || !Number.isFinite(value)
      ? { goal: name, figure: missing, status: 'n/a' }
      : { goal: name, figure: figure(value), status: ok(value) ? 'PASS' : 'MISS' };
  const added = r.sequential?.added.gateway?.median;
  const g32 = load(r.throughput, 'gateway', 32)?.rps;
  const d32 = load(r.throughput, 'direct', 32)?.rps;
  const p32 = load(r.throughput, 'portkey', 32)?.rps;
  const flatness = (['memory', 'sqlite'] as const).map((kind) => {
    const l10 = r.limiter.find((l) => l.kind === kind && l.events === 10)?.reserveUs.median;
    const l1m = r.limiter.find((l) => l.kind === kind && l.events === 1_000_000)?.reserveUs.median;
    return { kind, l10, l1m, ratio: ratio(l1m, l10) };
  });
  const worstFlatness = flatness.every((l) => l.ratio !== null) ? Math.max(...flatness.map((l) => l.ratio!)) : null;
  const open = r.memory.gateway;
  const fresh = r.memory.gatewayFresh;
  const w1 = load(r.workers, 'gateway-1w', 32)?.rps;
  const w2 = load(r.workers, 'gateway-2w', 32)?.rps;
  const issue4 = [
    goal('added median latency ≤ 0.3 ms (sequential)', added, (v) => v <= 0.3, (v) => `${v.toFixed(3)} ms`),
    goal('throughput ≥ 6× Portkey at 32 connections', ratio(g32, p32), (v) => v >= 6, (v) => `${v.toFixed(2)}× (${f(g32, 0)} vs ${f(p32, 0)} req/s)`, peerNote),
    goal('throughput ≥ 0.3× direct at 32 connections', ratio(g32, d32), (v) => v >= 0.3, (v) => `${v.toFixed(2)}× (${f(g32, 0)} vs ${f(d32, 0)} req/s)`),
    goal(
      'limiter flat within 1.5× from 10 to 1,000,000 events',
      worstFlatness,
      (v) => v <= 1.5,
      () => flatness.map((l) => `${l.kind} ${l.ratio!.toFixed(2)}× (${f(l.l10, 1)} → ${f(l.l1m, 1)} µs)`).join('; '),
    ),
    goal(
      `RSS ≤ 150 MB with ${open?.requested ?? 1000} open streams (after the load runs)`,
      open?.openRssMb,
      (v) => v <= 150 && open !== undefined && open.flowing === open.requested,
      (v) =>
        `${v.toFixed(0)} MB (${open?.flowing}/${open?.requested} streams flowing)` +
        (fresh?.firstBatchRssMb == null ? '' : `; fresh gateway: ${fresh.firstBatchRssMb.toFixed(0)} MB with its first ${batches(fresh)} (${fresh.flowing}/${fresh.requested} flowing in the end)`),
    ),
    goal('2 workers ≥ 1.3× one (32 connections)', ratio(w2, w1), (v) => v >= 1.3, (v) => `${v.toFixed(2)}× (${f(w2, 0)} vs ${f(w1, 0)} req/s)`),
  ].map((g) => ({ group: 'issue 4', ...g }));
  return [...issue4, ...costGoals(r, peerNote, nginxNote, goal)];
}

type GoalOf = (name: string, value: number | null | undefined, ok: (v: number) => boolean, figure: (v: number) => string, missing?: string) => Goal;

/** What a call costs, against the floor (a bare Node pass-through; nginx is shown beside it). */
function costGoals(r: BenchResults, peerNote: string, nginxNote: string, goal: GoalOf): Goal[] {
  const cpu = (name: string) => load(r.throughput, name, 32)?.cpuUsPerCall;
  const bare = cpu('bare-node');
  const nginx = cpu('nginx');
  const floor = (v: number | null | undefined) => `${us(v)} vs ${us(bare)} µs per call` + (nginx == null ? (nginxNote ? `; ${nginxNote}` : '') : `; nginx ${us(nginx)} µs`);
  const s32 = load(r.throughput, 'gateway-stored', 32)?.rps;
  const p32 = load(r.throughput, 'portkey', 32)?.rps;
  const many = r.memory.gatewayMany;
  // Judged on the worse of the fresh gateway's two figures (environment key, metered stored key),
  // each what a stream past the first batch adds (the first batch pays the heap's first growth).
  const fresh = [r.memory.gatewayFresh, r.memory.gatewayStored].filter((o): o is OpenStreams => perStream(o) != null);
  const worst = fresh.length === 0 ? undefined : fresh.reduce((a, b) => (perStream(b)! > perStream(a)! ? b : a));
  const beside = [
    ['environment key', r.memory.gatewayFresh],
    ['stored key', r.memory.gatewayStored],
    ['stored key', many],
    ['bare Node', r.memory.bareNode],
    ['nginx', r.memory.nginx],
    ['Portkey', r.memory.peerFresh],
  ] as const;
  const w1 = load(r.workers, 'gateway-1w', 32)?.cpuUsPerCall;
  const w2 = load(r.workers, 'gateway-2w', 32)?.cpuUsPerCall;
  const manyGoal = goal(
    '8,000 open streams through one gateway process in ≤ 400 MB RSS',
    many?.openRssMb,
    (v) => v <= 400 && many !== undefined && many.requested >= 8000 && many.flowing === many.requested,
    (v) => `${v.toFixed(0)} MB with ${many?.flowing}/${many?.requested} streams flowing (idle before: ${f(many?.idleRssMb, 0)} MB)`,
  );
  if (many !== undefined && many.requested < 8000) Object.assign(manyGoal, { status: 'n/a', figure: `${manyGoal.figure}; only ${many.requested} streams in this run` });
  return [
    goal('CPU per call ≤ 1.5× the bare Node proxy, environment key', ratio(cpu('gateway'), bare), (v) => v <= 1.5, (v) => `${v.toFixed(2)}× (${floor(cpu('gateway'))})`),
    goal('CPU per call ≤ 1.8× the bare Node proxy, metered stored key', ratio(cpu('gateway-stored'), bare), (v) => v <= 1.8, (v) => `${v.toFixed(2)}× (${floor(cpu('gateway-stored'))})`),
    goal('throughput ≥ 8× Portkey at 32 connections, metered stored key', ratio(s32, p32), (v) => v >= 8, (v) => `${v.toFixed(2)}× (${f(s32, 0)} vs ${f(p32, 0)} req/s)`, peerNote),
    goal(
      `memory ≤ 30 KB per open stream (fresh gateway, each stream past the first ${worst === undefined ? '–' : batches(worst)} of ${worst?.requested ?? '–'})`,
      perStream(worst),
      (v) => v <= 30 && fresh.every((o) => o.flowing === o.requested),
      () =>
        beside
          .filter(([, o]) => o !== undefined)
          .map(([label, o]) =>
            o!.marginalKbPerStream == null
              ? `${label}, ${o!.requested} streams: ${kb(o, ' KB')}`
              : `${label}, past the first ${batches(o!)} of ${o!.requested}: ${perStreamKb(o, ' KB')} (the first ${batches(o!)}: ${f(o!.firstBatchKbPerStream, 1)} KB)`,
          )
          .join('; '),
    ),
    manyGoal,
    goal('PROXYGPT_WORKERS=2: CPU per call ≤ 1.15× one worker\'s', ratio(w2, w1), (v) => v <= 1.15, (v) => `${v.toFixed(2)}× (${us(w2)} vs ${us(w1)} µs per call)`),
    goal('idle RSS after the load runs ≤ 150 MB', r.memory.idleAfterLoadMb, (v) => v <= 150, (v) => `${v.toFixed(0)} MB once idle for ${f(r.memory.idleAfterLoadS, 0)} s (${f(r.memory.idleAfterLoadFirstMb, 0)} MB right after the load; fresh: ${f(r.memory.idleFreshMb, 0)} MB)`),
  ].map((g) => ({ group: 'cost', ...g }));
}

function tables(r: BenchResults): Table[] {
  const out: Table[] = [];
  const goalRows = (group: string) => r.goals.filter((g) => (g.group ?? 'issue 4') === group).map((g) => [g.goal, g.figure, g.status]);
  out.push({ title: 'Goals: what a call costs, against the floor', head: ['goal', 'figure', 'status'], rows: goalRows('cost') });
  out.push({ title: 'Goals (issue 4)', head: ['goal', 'figure', 'status'], rows: goalRows('issue 4') });
  const bare32 = load(r.throughput, 'bare-node', 32);
  const sideRows = TARGETS.flatMap(([name, label]) => {
    const l = load(r.throughput, name, 32);
    const o = streamsOf(r, name);
    if (!l && !o) return [];
    return [
      [name, label, f(l?.rps, 0), x(ratio(l?.rps, bare32?.rps)), us(l?.cpuUsPerCall), x(ratio(l?.cpuUsPerCall, bare32?.cpuUsPerCall)), l ? l.requests.toLocaleString('en-US') : '–', f(l?.cpuSeconds, 2), perStreamKb(o)],
    ];
  });
  if (sideRows.length > 0) {
    out.push({
      title:
        `Every target side by side: 32 connections; CPU = utime + stime of the serving process (tree) per call answered (resolution ${(1000 / (r.cpuTicksPerSecond ?? 100)).toFixed(0)} ms of CPU time); ` +
        `memory = what each open stream past the first ${r.memory.gatewayFresh === undefined ? '–' : batches(r.memory.gatewayFresh)} of ${r.memory.gatewayFresh?.requested ?? '–'} adds to RSS, on a fresh process of its own`,
      head: ['target', 'what', 'req/s', '× bare Node', 'µs CPU/call', '× bare Node CPU', 'calls', 'CPU s', 'KB per open stream (past the first batch)'],
      rows: sideRows,
    });
  }
  if (r.sequential) {
    const s = r.sequential;
    out.push({
      title: `Sequential latency, one call at a time (${s.rounds} interleaved rounds), ms`,
      head: ['target', 'median', 'p99', 'added median', 'added p99'],
      rows: Object.entries(s.perTarget).map(([name, v]) => [name, f(v.median, 3), f(v.p99, 3), f(s.added[name]?.median, 3), f(s.added[name]?.p99, 3)]),
    });
  }
  if (r.throughput.length > 0) {
    out.push({
      title: 'Throughput (autocannon, POST chat completion, interleaved rounds)',
      head: ['connections', 'target', 'req/s', 'p50 ms', 'p99 ms', '× direct', 'gateway × this', 'µs CPU/call', 'non-2xx/errors'],
      rows: r.throughput.map((l) => {
        const direct = load(r.throughput, 'direct', l.connections);
        const gateway = load(r.throughput, 'gateway', l.connections);
        return [
          String(l.connections),
          l.target,
          f(l.rps, 0),
          f(l.p50, 2),
          f(l.p99, 2),
          l.target === 'direct' ? '' : x(ratio(l.rps, direct?.rps)),
          l.target === 'gateway' ? '' : x(ratio(gateway?.rps, l.rps)),
          us(l.cpuUsPerCall),
          `${l.non2xx}/${l.errors + l.timeouts}`,
        ];
      }),
    });
  }
  if (r.firstByte || r.chunkTiming) {
    out.push({
      title: 'Streaming: time to first byte (ms) and chunk spacing (200 chunks sent 5 ms apart)',
      head: ['target', 'TTFB median', 'added TTFB median', 'added TTFB p99', 'gap median', 'gap p99', 'bursts (< 1 ms)'],
      rows: (r.chunkTiming ?? []).map((c) => {
        const t = r.firstByte?.perTarget[c.target];
        const a = r.firstByte?.added[c.target];
        const short = c.gapCount < c.streams * 200 ? ` (only ${c.events} events arrived)` : '';
        return [c.target, f(t?.median, 3), f(a?.median, 3), f(a?.p99, 3), f(c.gaps.median, 2), f(c.gaps.p99, 2), `${c.bursts}/${c.gapCount}${short}`];
      }),
    });
  }
  if (r.limiter.length > 0) {
    const base = (kind: string) => r.limiter.find((l) => l.kind === kind)!.reserveUs.median;
    out.push({
      title: 'Limiter alone: one check-and-reserve (file DB, hourly + daily rules; memory: one worker, sqlite: several)',
      head: ['limiter', 'events in window', 'median µs', 'p99 µs', '× fewest events', 'reserves timed'],
      rows: r.limiter.map((l) => [l.kind, l.events.toLocaleString('en-US'), f(l.reserveUs.median, 1), f(l.reserveUs.p99, 1), x(l.reserveUs.median / base(l.kind)), String(l.reserves)]),
    });
  }
  const m = r.memory;
  const memRows: string[][] = [
    ['gateway idle (fresh)', f(m.idleFreshMb, 1), '', ''],
    ['gateway idle (right after the load runs)', f(m.idleAfterLoadFirstMb ?? null, 1), '', ''],
    ['gateway idle (after the load runs, once RSS stopped falling)', f(m.idleAfterLoadMb, 1), '', `${f(m.idleAfterLoadS, 0)} s after the load (V8 returns heap grown under load after some idle seconds)`],
  ];
  const phases = [
    [' (after the load runs)', m.gateway],
    [' (after the load runs)', m.peer],
    [' (fresh)', m.gatewayFresh],
    [' (fresh)', m.gatewayStored],
    [' (fresh)', m.bareNode],
    [' (fresh; master + worker)', m.nginx],
    [' (fresh)', m.peerFresh],
    [' (fresh)', m.gatewayMany],
  ] as const;
  for (const [label, o] of phases) {
    if (o) {
      const marginal = o.marginalKbPerStream == null ? '' : `; the first ${batches(o)}: ${f(o.firstBatchKbPerStream, 1)} KB each, each stream past them: ${o.marginalKbPerStream.toFixed(1)} KB`;
      memRows.push([`${o.target}${label}, ${o.requested} open streams`, f(o.openRssMb, 1), kb(o), `${o.flowing} flowing when read (${o.settleSeconds.toFixed(1)} s after opening), ${o.completed} ended normally, ${o.failed} failed; before: ${f(o.idleRssMb, 1)} MB${marginal}`]);
    }
  }
  const p = m.abortProbe;
  if (p) {
    memRows.push([
      `gateway after ${p.aborted} clients left mid-stream`,
      f(p.rssPeakMb, 1),
      '',
      `peak over the ${p.watchedSeconds.toFixed(0)} s after (before: ${f(p.rssBeforeMb, 1)} MB); meanwhile the slowest of ${p.calls} calls took ${f(p.longestCallSeconds, 2)} s, ${p.failedCalls} failed`,
    ]);
  }
  out.push({ title: 'Memory (VmRSS of the serving process; nginx: master + worker)', head: ['state', 'RSS MB', 'KB/stream', 'detail'], rows: memRows });
  if (r.workers.length > 0) {
    const one = load(r.workers, 'gateway-1w', 32);
    out.push({
      title: 'Workers: PROXYGPT_WORKERS=1 vs 2 at 32 connections',
      head: ['gateway', 'req/s', 'p50 ms', 'p99 ms', '× 1 worker', 'µs CPU/call (all processes)', 'CPU × 1 worker'],
      rows: r.workers.map((l) => [l.target, f(l.rps, 0), f(l.p50, 2), f(l.p99, 2), x(ratio(l.rps, one?.rps)), us(l.cpuUsPerCall), x(ratio(l.cpuUsPerCall, one?.cpuUsPerCall))]),
    });
  }
  if (r.scaleOut !== undefined && r.scaleOut.length > 0) {
    const single = r.scaleOut.find((s) => s.setup === 'sqlite');
    const withRedis = r.scaleOut.find((s) => s.setup === 'sqlite+redis');
    out.push({
      title:
        'Scale-out: metered stored key, 32 connections in all (two instances: 16 each at once); CPU = utime + stime per call answered, ' +
        `of the gateways, of the Redis server and of the Postgres cluster. The Redis limiter adds ${us(sub(withRedis?.gatewayUs, single?.gatewayUs))} µs of gateway CPU and ` +
        `${us(withRedis?.redisUs)} µs of Redis CPU per call`,
      head: ['set-up', 'instances', 'req/s', 'calls', 'µs CPU/call gateways', 'µs Redis', 'µs Postgres', 'µs in all', '× one on SQLite'],
      rows: r.scaleOut.map((s) => {
        const all = (s.gatewayUs ?? 0) + (s.redisUs ?? 0) + (s.postgresUs ?? 0);
        return [s.setup, String(s.instances), f(s.rps, 0), s.calls.toLocaleString('en-US'), us(s.gatewayUs), us(s.redisUs), us(s.postgresUs), us(all), x(ratio(all, single?.gatewayUs ?? null))];
      }),
    });
  }
  return out;
}

function textTable(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [t.title, line(t.head), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

function mdTable(t: Table): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`### ${t.title}`, '', `| ${t.head.map(esc).join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

function header(meta: Meta): string[] {
  const settings = Object.entries(meta.settings).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    `ProxyGPT bench — ${meta.date}`,
    `Machine: ${meta.cpus} × ${meta.cpuModel}, ${meta.os}; Node ${meta.node}; load average at start ${meta.loadAvgStart.map((l) => l.toFixed(2)).join(' ')}` +
      (meta.loadAvgEnd ? `, at end ${meta.loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}` : '') +
      (meta.durationSeconds ? `; run took ${meta.durationSeconds.toFixed(0)} s` : ''),
    `Gateway revision: ${meta.revision}` + (meta.nginx ? `; nginx ${meta.nginx}` : '') + (meta.openFilesLimit !== undefined ? `; open-files limit ${meta.openFilesLimit}` : ''),
    `Settings: ${settings}`,
    ...(meta.storedKeyUsage ? [`Stored key (metered): ${meta.storedKeyUsage}`] : []),
    ...meta.notes.map((n) => `Note: ${n}`),
  ];
}

export function renderText(r: BenchResults): string {
  return [...header(r.meta), '', ...tables(r).map(textTable).join('\n\n').split('\n')].join('\n');
}

export function renderMarkdown(r: BenchResults): string {
  return [`# ${header(r.meta)[0]}`, '', ...header(r.meta).slice(1).map((l) => `- ${l}`), '', tables(r).map(mdTable).join('\n\n'), ''].join('\n');
}

/** Writes <stamp>.md/.json and latest.md/.json; returns the paths written. */
export function writeResults(dir: string, r: BenchResults): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = r.meta.date.replace(/[:.]/g, '-');
  const md = renderMarkdown(r);
  const json = `${JSON.stringify(r, null, 2)}\n`;
  const paths = [join(dir, `${stamp}.md`), join(dir, `${stamp}.json`), join(dir, 'latest.md'), join(dir, 'latest.json')];
  writeFileSync(paths[0]!, md);
  writeFileSync(paths[1]!, json);
  writeFileSync(paths[2]!, md);
  writeFileSync(paths[3]!, json);
  return paths;
}
