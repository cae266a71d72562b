/**
 * What clearing an upstream answer of our secrets costs per call, in process:
 * `npx tsx bench/redaction.ts [rounds]`. For each piece of a call's answer that is scanned (the
 * response headers, a whole JSON body, an SSE stream through the tap, a large JSON body through
 * the tap), the time with the configured secrets (an upstream key, two proxy keys, an admin key;
 * and with 46 more proxy keys) against the same work with no secret to look for, in µs per call.
 * The answers hold no secret: this is the common case, the price every call pays. Rounds of the
 * variants alternate so machine noise falls on all alike; the median round is reported. The
 * "scan alone" rows time only the redaction calls the taps make (what they add, without the
 * noise of the stream machinery around them). The keys are random: figures move a little with
 * their characters.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redactor } from '../src/redact.js';
import { clientResponseHeaders } from '../src/proxy/headers.js';
import { SseTap } from '../src/metering/sse-tap.js';
import { JsonTap } from '../src/metering/json-tap.js';

const rounds = Number(process.argv[2] ?? 15);
/** Keys as `openssl rand -hex 24` makes them (the README's advice), and an OpenAI-style upstream key. */
const hex = (n: number) => Array.from({ length: n }, () => randomBytes(24).toString('hex'));
const FOUR = [`sk-proj-${randomBytes(48).toString('base64url')}`, ...hex(3)];
const NO_SECRETS = new Redactor([]);
const FIFTY = [...FOUR, ...hex(46)];

/** An OpenAI answer's headers as undici hands them over. */
const HEADERS: Record<string, string> = {
  date: 'Mon, 01 Dec 2026 10:00:00 GMT',
  'content-type': 'application/json',
  'content-length': '812',
  connection: 'keep-alive',
  'access-control-expose-headers': 'X-Request-ID',
  'openai-organization': 'org-abc',
  'openai-processing-ms': '431',
  'openai-version': '2020-10-01',
  'x-ratelimit-limit-requests': '10000',
  'x-ratelimit-remaining-requests': '9999',
  'x-ratelimit-reset-requests': '6ms',
  'x-request-id': 'req_0123456789abcdef0123456789abcdef',
  'strict-transport-security': 'max-age=31536000; includeSubDomains; preload',
  'cf-cache-status': 'DYNAMIC',
  server: 'cloudflare',
  'cf-ray': '8f0123456789abcd-FRA',
  'alt-svc': 'h3=":443"; ma=86400',
};

const completion = (words: number) =>
  JSON.stringify({
    id: 'chatcmpl-0123456789',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: 'lorem ipsum dolor sit amet '.repeat(words / 5) }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 20, completion_tokens: words, total_tokens: 20 + words },
  });
const WHOLE = Buffer.from(completion(100)); // ~0.7 KB
const LARGE = Buffer.from(completion(300_000)); // ~1.6 MB, through the JSON tap
const LARGE_CHUNKS: Buffer[] = [];
for (let i = 0; i < LARGE.length; i += 64 * 1024) LARGE_CHUNKS.push(LARGE.subarray(i, i + 64 * 1024));

/** A 50-event chat stream, one event per chunk, as an upstream writes it. */
const SSE_CHUNKS = [
  ...Array.from({ length: 50 }, (_, i) =>
    Buffer.from(`data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: `word${i} ` }, finish_reason: null }] })}\n\n`),
  ),
  Buffer.from('data: [DONE]\n\n'),
];
const SSE_TEXTS = SSE_CHUNKS.map((c) => c.toString('utf8'));

async function drain(source: Readable, through: NodeJS.ReadWriteStream & Readable): Promise<void> {
  through.resume();
  await pipeline(source, through);
}

type Case = { name: string; calls: number; run: (r: Redactor | null) => Promise<void> | void };

const cases: Case[] = [
  {
    name: 'response headers (17)',
    calls: 20_000,
    run: (r) => {
      clientResponseHeaders(HEADERS, r ?? NO_SECRETS);
    },
  },
  {
    name: 'whole JSON body (0.7 KB)',
    calls: 20_000,
    run: (r) => {
      const text = WHOLE.toString('utf8');
      if (r !== null && r.hasSecret(text)) throw new Error('unexpected secret');
    },
  },
  {
    name: 'SSE stream (51 events)',
    calls: 300,
    run: (r) =>
      drain(Readable.from(SSE_CHUNKS, { objectMode: false }), new SseTap({ stripUsageChunk: false, ...(r === null ? {} : { redact: (t: string) => r.secretsOnly(t) }) })),
  },
  {
    name: 'SSE: the scan alone (51 events)',
    calls: 5_000,
    run: (r) => {
      if (r !== null) for (const text of SSE_TEXTS) r.secretsOnly(text);
    },
  },
  {
    name: 'JSON tap (1.6 MB, 64 KiB chunks)',
    calls: 60,
    run: (r) => drain(Readable.from(LARGE_CHUNKS, { objectMode: false }), new JsonTap(r === null ? null : r.scrubber())),
  },
  {
    name: 'JSON tap: the scan alone (1.6 MB)',
    calls: 200,
    run: (r) => {
      if (r === null) return;
      const scrubber = r.scrubber();
      for (const chunk of LARGE_CHUNKS) scrubber.write(chunk);
      scrubber.end();
    },
  },
];

async function timeOf(c: Case, r: Redactor | null): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < c.calls; i++) await c.run(r);
  return Number(process.hrtime.bigint() - started) / 1000 / c.calls;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  console.log(`| what is scanned | no secret to look for | 4 secrets | 50 secrets |`);
  console.log(`|---|---|---|---|`);
  for (const c of cases) {
    const variants: [string, Redactor | null][] = [
      ['none', null],
      ['4', new Redactor(FOUR)],
      ['50', new Redactor(FIFTY)],
    ];
    const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
    for (const [, r] of variants) await timeOf({ ...c, calls: Math.ceil(c.calls / 10) }, r); // warm up
    for (let round = 0; round < rounds; round++) for (const [name, r] of variants) times.get(name)!.push(await timeOf(c, r));
    const [none, four, fifty] = variants.map(([name]) => median(times.get(name)!));
    const extra = (t: number) => `${t.toFixed(2)} µs (+${(t - none!).toFixed(2)})`;
    console.log(`| ${c.name} | ${none!.toFixed(2)} µs | ${extra(four!)} | ${extra(fifty!)} |`);
  }
}

await main();
