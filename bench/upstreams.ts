/**
 * What routing over several upstreams costs: `npx tsx bench/upstreams.ts [calls per round] [rounds]`.
 * Not a test: nothing passes or fails; it prints a table.
 *
 * 1. Routing alone, in process: the work a call does for routing (the route for its model from the
 *    cache, the availability check, the pick of upstream and key, the address, the body with a
 *    renamed model spliced in) with the issue's three-upstream file, against the single upstream of
 *    OPENAI_* (no file), CPU time per call over many iterations.
 * 2. A whole call, in process: a gateway in front of mock upstreams (both in this process, with
 *    the client), sequential chat completions: no file vs the upstreams file (a renamed model on a
 *    second upstream); median latency, and CPU time of this process per call (client and mock cost
 *    the same in both, so the difference is the gateway's). Rounds alternate between the two.
 * 3. Failover latency for a refused upstream: the first choice refuses connections (breaker off, so
 *    every call tries it first) and the second serves, against the second alone; median and p99
 *    per call, and with the breaker on (5 failures): what the first calls pay, and what calls pay
 *    once it is open.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config.js';
import { createApp, type App } from '../src/app.js';
import { upstreamBody } from '../src/call/inspect.js';
import { UpstreamRouter } from '../src/upstreams/router.js';
import { parseUpstreamsText } from '../src/upstreams/file.js';
import { singleUpstream } from '../src/upstreams/spec.js';
import type { Tried } from '../src/upstreams/route.js';
import { startMockOpenAI, type MockOpenAI } from '../test/fixtures/mock-openai.js';

const callsPerRound = Number(process.argv[2] ?? 2_000);
const rounds = Number(process.argv[3] ?? 5);
const PROXY_KEY = 'pgpt-bench-upstreams-key-00000000';
const KEYS = { KEY_A1: 'sk-bench-a1-0123456789abcdefghij', KEY_A2: 'sk-bench-a2-0123456789abcdefghij', AZURE_KEY: 'azure-bench-0123456789abcdefghij' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function issueFile(a: string, azure: string, local: string): string {
  return JSON.stringify({
    upstreams: [
      { name: 'openai-a', kind: 'openai', base_url: a, api_key: ['${KEY_A1}', '${KEY_A2}'], models: ['gpt-4o*', 'gpt-4.1*'] },
      { name: 'azure', kind: 'azure', base_url: azure, api_key: '${AZURE_KEY}', api_version: '2024-10-21', models: { 'gpt-4o': 'my-gpt4o-deployment' } },
      { name: 'local', kind: 'openai-compatible', base_url: local, models: { 'llama-3': 'meta-llama/Llama-3-8B-Instruct', 'qwen*': null }, prices: { '*': { input: 0, output: 0 } } },
    ],
  });
}

// --- 1. Routing alone --------------------------------------------------------------------------

function routingAlone(): { single: number; file: number; fileRenamed: number } {
  const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello in three words.' }], temperature: 0.2 };
  const raw = Buffer.from(JSON.stringify(body));
  const renamedBody = { ...body, model: 'llama-3' };
  const renamedRaw = Buffer.from(JSON.stringify(renamedBody));
  const clock = () => 1_800_000_000_000;
  const single = new UpstreamRouter(singleUpstream(new URL('http://127.0.0.1:9/v1'), 'sk-x'), { timeoutMs: 600_000, clock });
  const file = new UpstreamRouter(parseUpstreamsText(issueFile('http://127.0.0.1:9/v1', 'http://127.0.0.1:9', 'http://127.0.0.1:9/v1'), KEYS, 'bench'), { timeoutMs: 600_000, clock });
  const call = (router: UpstreamRouter, model: string, json: Record<string, unknown>, bytes: Buffer) => {
    const route = router.route(model)!;
    const now = clock();
    if (route.availableAt(now) > now) throw new Error('unavailable');
    const tried: Tried = { keys: new Set(), upstreams: new Set() };
    const pick = route.pick(tried)!;
    tried.keys.add(pick.key);
    pick.candidate.upstream.address('/chat/completions', '', pick.candidate.deployment);
    pick.key.health.succeeded(pick.probe);
    return upstreamBody('/chat/completions', { model, stream: false, json }, bytes, null, pick.candidate.model).body;
  };
  const n = 200_000;
  const measure = (run: () => unknown) => {
    for (let i = 0; i < 20_000; i++) run(); // warm up
    const before = cpuUs();
    for (let i = 0; i < n; i++) run();
    return ((cpuUs() - before) / n) * 1000; // ns per call
  };
  const results = { single: [] as number[], file: [] as number[], fileRenamed: [] as number[] };
  for (let r = 0; r < 5; r++) {
    results.single.push(measure(() => call(single, 'gpt-4o', body, raw)));
    results.file.push(measure(() => call(file, 'gpt-4o', body, raw)));
    results.fileRenamed.push(measure(() => call(file, 'llama-3', renamedBody, renamedRaw)));
  }
  void single.close();
  void file.close();
  return { single: median(results.single), file: median(results.file), fileRenamed: median(results.fileRenamed) };
}

// --- Gateways in process ----------------------------------------------------------------------

interface Gateway {
  url: string;
  app: App;
  close(): Promise<void>;
}

async function startGateway(env: Record<string, string>): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-upstreams-'));
  const { config } = loadConfig({ PROXYGPT_API_KEY: PROXY_KEY, PROXYGPT_DATABASE_URL: join(dir, 'db.sqlite'), LOG_LEVEL: 'error', ...KEYS, ...env });
  const app = await createApp(config);
  await app.server.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.server.address() as AddressInfo).port}`;
  return {
    url,
    app,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function writeFile(text: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'proxygpt-bench-file-'));
  const path = join(dir, 'upstreams.json');
  writeFileSync(path, text);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

/** `n` sequential chat calls of `model`; the latency of each in ms, and the CPU time of this process per call in µs. */
async function sequential(gw: Gateway, model: string, n: number): Promise<{ latencies: number[]; cpuPerCall: number }> {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Say hello in three words.' }] });
  const headers = { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' };
  const latencies: number[] = [];
  const before = cpuUs();
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers, body });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${model}: status ${res.status}`);
    latencies.push(performance.now() - started);
  }
  return { latencies, cpuPerCall: (cpuUs() - before) / n };
}

// --- 2. A whole call --------------------------------------------------------------------------

async function wholeCall(mocks: MockOpenAI[]): Promise<Record<string, { latency: number; cpu: number }>> {
  const [a, azure, local] = mocks as [MockOpenAI, MockOpenAI, MockOpenAI];
  const file = writeFile(issueFile(a.url, `http://127.0.0.1:${azure.port}`, local.url));
  const single = await startGateway({ OPENAI_API_KEY: KEYS.KEY_A1, OPENAI_BASE_URL: a.url });
  const routed = await startGateway({ PROXYGPT_UPSTREAMS: file.path });
  const runs: Record<string, { latencies: number[]; cpu: number[] }> = {
    'no file (one upstream)': { latencies: [], cpu: [] },
    'upstreams file, gpt-4o (2 candidates)': { latencies: [], cpu: [] },
    'upstreams file, llama-3 (renamed)': { latencies: [], cpu: [] },
  };
  const targets: [string, Gateway, string][] = [
    ['no file (one upstream)', single, 'gpt-4o'],
    ['upstreams file, gpt-4o (2 candidates)', routed, 'gpt-4o'],
    ['upstreams file, llama-3 (renamed)', routed, 'llama-3'],
  ];
  for (const [, gw, model] of targets) await sequential(gw, model, 300); // warm up
  for (let r = 0; r < rounds; r++) {
    for (const [name, gw, model] of r % 2 === 0 ? targets : [...targets].reverse()) {
      const { latencies, cpuPerCall } = await sequential(gw, model, callsPerRound);
      runs[name]!.latencies.push(median(latencies));
      runs[name]!.cpu.push(cpuPerCall);
    }
  }
  await single.close();
  await routed.close();
  file.remove();
  return Object.fromEntries(Object.entries(runs).map(([name, v]) => [name, { latency: median(v.latencies), cpu: median(v.cpu) }]));
}

// --- 3. Failover latency ------------------------------------------------------------------------

async function failover(b: MockOpenAI): Promise<Record<string, { median: number; p99: number }>> {
  const dead = await refusedUrl();
  const entry = (name: string, url: string, weight: number) => ({ name, kind: 'openai', base_url: url, api_key: '${KEY_A1}', models: ['*'], weight });
  const alone = writeFile(JSON.stringify({ upstreams: [entry('b', b.url, 1)] }));
  const noBreaker = writeFile(JSON.stringify({ breaker: { failures: 0 }, upstreams: [entry('dead', dead, 1_000_000), entry('b', b.url, 1)] }));
  const withBreaker = writeFile(JSON.stringify({ breaker: { failures: 5, cooldown_ms: 3_600_000 }, upstreams: [entry('dead', dead, 1_000_000), entry('b', b.url, 1)] }));
  const gws = { alone: await startGateway({ PROXYGPT_UPSTREAMS: alone.path }), noBreaker: await startGateway({ PROXYGPT_UPSTREAMS: noBreaker.path }), withBreaker: await startGateway({ PROXYGPT_UPSTREAMS: withBreaker.path }) };
  // The breaker's first calls (each pays the refusal until it opens), before any warm-up.
  const firstCalls = (await sequential(gws.withBreaker, 'gpt-4o', 5)).latencies;
  for (const gw of [gws.alone, gws.noBreaker]) await sequential(gw, 'gpt-4o', 300);
  const lat = { alone: [] as number[], noBreaker: [] as number[], withBreaker: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const name of (r % 2 === 0 ? ['alone', 'noBreaker', 'withBreaker'] : ['withBreaker', 'noBreaker', 'alone']) as (keyof typeof gws)[]) {
      lat[name].push(...(await sequential(gws[name], 'gpt-4o', callsPerRound)).latencies);
    }
  }
  for (const gw of Object.values(gws)) await gw.close();
  for (const f of [alone, noBreaker, withBreaker]) f.remove();
  return {
    'b alone': { median: median(lat.alone), p99: p99(lat.alone) },
    'refused first, then b (every call)': { median: median(lat.noBreaker), p99: p99(lat.noBreaker) },
    'refused first, breaker on: its first 5 calls': { median: median(firstCalls), p99: Math.max(...firstCalls) },
    'refused first, breaker on: once open': { median: median(lat.withBreaker), p99: p99(lat.withBreaker) },
  };
}

// --- main ------------------------------------------------------------------------------------

const mocks = await Promise.all([startMockOpenAI(0, { record: false }), startMockOpenAI(0, { record: false }), startMockOpenAI(0, { record: false })]);
const alone = routingAlone();
console.log('\n1. Routing alone (in process; CPU time per call)');
console.log(`   no file (one upstream):                  ${alone.single.toFixed(0)} ns`);
console.log(`   upstreams file, gpt-4o (2 candidates):   ${alone.file.toFixed(0)} ns`);
console.log(`   upstreams file, llama-3 (renamed, spliced): ${alone.fileRenamed.toFixed(0)} ns`);

const whole = await wholeCall(mocks);
console.log(`\n2. A whole call (client, gateway and mocks in this process; ${rounds} rounds of ${callsPerRound} sequential calls; medians)`);
for (const [name, v] of Object.entries(whole)) console.log(`   ${name.padEnd(40)} latency ${v.latency.toFixed(3)} ms   CPU ${v.cpu.toFixed(0)} µs/call`);

const fail = await failover(mocks[0]!);
console.log(`\n3. Failover latency for a refused upstream (${rounds} rounds of ${callsPerRound} sequential calls)`);
for (const [name, v] of Object.entries(fail)) console.log(`   ${name.padEnd(46)} median ${v.median.toFixed(3)} ms   p99 ${v.p99.toFixed(3)} ms`);
const added = fail['refused first, then b (every call)']!.median - fail['b alone']!.median;
console.log(`   added by a refused first choice: ${added.toFixed(3)} ms per call (median)`);
await Promise.all(mocks.map((m) => m.close()));
