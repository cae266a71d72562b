/**
 * What recording a call in the metrics costs, in process: `npx tsx bench/metrics.ts [rounds]`.
 * Times GatewayMetrics.callEnded (the step call-record.ts runs once per settled call: endpoint
 * from the route, model label, the requests counter, both histograms, tokens and cost) on a real
 * Fastify request, for calls spread over 50 keys × 4 models × 3 statuses (the series exist after
 * the first round, as in a gateway that has run a while), in µs per call. Beside it the same
 * updates through prom-client's own API with its label children cached (`counter.labels(...)`
 * kept per combination), which hashes the label values on every update, and an empty loop over
 * the same inputs (the floor), and the two clock reads ProxyCall.forward adds to time the
 * upstream's answer. Rounds alternate so machine noise falls on all alike; the median
 * round is reported. Also: how long one /metrics text takes to build with those series.
 */
import Fastify, { type FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import type { CallSettlement, ProxyCall } from '../src/call/proxy-call.js';
import { PriceTable } from '../src/metering/prices.js';
import { DURATION_BUCKETS, GatewayMetrics } from '../src/metrics/gateway-metrics.js';
import { ModelLabels } from '../src/metrics/model-labels.js';

const rounds = Number(process.argv[2] ?? 15);
const CALLS_PER_ROUND = 200_000;
const KEYS = Array.from({ length: 50 }, (_, i) => `team-member-${i}`);
const MODELS = ['gpt-4o-mini', 'gpt-4o-2024-08-06', 'gpt-4.1', 'someone-s-model'];
const STATUSES = [200, 200, 200, 429, 500];

async function capturedRequest(): Promise<FastifyRequest> {
  const app = Fastify();
  let captured: FastifyRequest | null = null;
  app.post('/v1/chat/completions', async (request) => {
    captured = request;
    return {};
  });
  await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: {} });
  await app.close();
  return captured!;
}

interface Input {
  call: ProxyCall;
  status: number;
  elapsedMs: number;
  settlement: CallSettlement | null;
}

function inputs(): Input[] {
  const list: Input[] = [];
  for (let i = 0; i < 4_096; i++) {
    const status = STATUSES[i % STATUSES.length]!;
    const call = {
      principal: { id: `key_${i % KEYS.length}`, name: KEYS[i % KEYS.length]!, source: 'stored', policy: null, version: 0, expiresAt: null },
      body: { model: MODELS[(i >> 3) % MODELS.length]!, stream: false, json: {} },
      upstreamMs: status === 429 ? null : 20 + (i % 97),
    } as unknown as ProxyCall;
    const settlement = status === 429 ? null : { usage: { promptTokens: 100 + (i % 13), completionTokens: 50 + (i % 7), cachedTokens: 0 }, costMicroUsd: 45 + (i % 5), estimated: false };
    list.push({ call, status, elapsedMs: 25 + (i % 101), settlement });
  }
  return list;
}

/** The same updates through prom-client's API, label children cached per combination. */
function promClientRecorder(labels: ModelLabels) {
  const registry = new Registry();
  const requests = new Counter({ name: 'r_total', help: 'r', labelNames: ['key', 'endpoint', 'model', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'd', help: 'd', labelNames: ['endpoint'], buckets: [...DURATION_BUCKETS], registers: [registry] });
  const upstream = new Histogram({ name: 'u', help: 'u', labelNames: ['endpoint'], buckets: [...DURATION_BUCKETS], registers: [registry] });
  const tokens = new Counter({ name: 't_total', help: 't', labelNames: ['key', 'model', 'type'], registers: [registry] });
  const cost = new Counter({ name: 'c_total', help: 'c', labelNames: ['key', 'model'], registers: [registry] });
  const children = new Map<string, { req: { inc(v?: number): void }; p: { inc(v: number): void }; c: { inc(v: number): void }; usd: { inc(v: number): void } }>();
  const endpoint = 'POST /v1/chat/completions';
  const d = duration.labels(endpoint);
  const u = upstream.labels(endpoint);
  return (request: FastifyRequest, input: Input) => {
    void request.routeOptions.url;
    const model = labels.labelOf(input.call.body.model);
    const id = `${input.call.principal.name}\u0000${model}\u0000${input.status}`;
    let child = children.get(id);
    if (child === undefined) {
      const key = input.call.principal.name;
      child = { req: requests.labels(key, endpoint, model, String(input.status)), p: tokens.labels(key, model, 'prompt'), c: tokens.labels(key, model, 'completion'), usd: cost.labels(key, model) };
      children.set(id, child);
    }
    d.observe(input.elapsedMs / 1000);
    if (input.call.upstreamMs !== null) u.observe(input.call.upstreamMs / 1000);
    child.req.inc();
    if (input.settlement !== null) {
      child.p.inc(input.settlement.usage.promptTokens);
      child.c.inc(input.settlement.usage.completionTokens);
      child.usd.inc(input.settlement.costMicroUsd / 1e6);
    }
  };
}

function timeRound(work: (input: Input) => void, list: Input[]): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS_PER_ROUND; i++) work(list[i & 4095]!);
  return Number(process.hrtime.bigint() - started) / 1000 / CALLS_PER_ROUND;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const request = await capturedRequest();
const list = inputs();
const table = new PriceTable();
const labels = new ModelLabels(() => table, null);
const metrics = new GatewayMetrics(labels);
metrics.watch({ openCalls: 0, openStreams: 0 });
const viaPromClient = promClientRecorder(labels);
let sink = 0;
const variants: [string, (input: Input) => void][] = [
  ['empty loop (floor)', (input) => (sink += input.status)],
  ['GatewayMetrics.callEnded', (input) => metrics.callEnded(request, input.call, input.status, input.elapsedMs, input.settlement)],
  ["prom-client's API, children cached", (input) => viaPromClient(request, input)],
  // What ProxyCall.forward adds to time the upstream's answer (its two clock reads).
  ['upstream timing: 2 × performance.now()', (input) => (sink += performance.now() - performance.now() + input.status)],
];
const results = new Map<string, number[]>(variants.map(([name]) => [name, []]));
for (const [, work] of variants) timeRound(work, list); // warm up: every series exists, the code is optimised
for (let round = 0; round < rounds; round++) {
  for (let j = 0; j < variants.length; j++) {
    const [name, work] = variants[(round + j) % variants.length]!;
    results.get(name)!.push(timeRound(work, list));
  }
}

const scrapes: number[] = [];
let size = 0;
for (let i = 0; i < 20; i++) {
  const started = process.hrtime.bigint();
  size = (await metrics.registry.metrics()).length;
  scrapes.push(Number(process.hrtime.bigint() - started) / 1e6);
}

console.log(`metrics recording, ${rounds} rounds × ${CALLS_PER_ROUND} calls, median round (${KEYS.length} keys × ${MODELS.length} models × statuses ${[...new Set(STATUSES)].join('/')})`);
for (const [name] of variants) console.log(`  ${name.padEnd(38)} ${median(results.get(name)!).toFixed(3)} µs per call`);
const floor = median(results.get('empty loop (floor)')!);
console.log(`  callEnded above the floor              ${(median(results.get('GatewayMetrics.callEnded')!) - floor).toFixed(3)} µs per call`);
console.log(`  prom-client above the floor            ${(median(results.get("prom-client's API, children cached")!) - floor).toFixed(3)} µs per call`);
console.log(`/metrics text (process metrics included): ${(size / 1024).toFixed(0)} KiB, built in ${median(scrapes).toFixed(2)} ms (median of ${scrapes.length})`);
if (sink === -1) console.log(sink);
