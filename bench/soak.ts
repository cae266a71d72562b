/**
 * `npm run soak` (not part of `npm test`): ten minutes (SOAK_SECONDS) of mixed traffic through one
 * gateway process with a metered stored key: non-streaming calls, streams read to the end, streams
 * the client abandons after the first event, and calls the upstream fails (500). Prints the
 * gateway's RSS over time and at the end: errors (anything but the expected statuses), how many
 * calls were sent, how many the gateway counted in the key's request window and how many it
 * recorded. Passes when the counts are exact (every call sent counted and recorded once) and RSS
 * after the run is within SOAK_RSS_GROWTH_MB (default 40) of RSS after the first minute.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { buildIfStale, createStoredKey, keyUsage, startGateway, startMock } from './lib/services.js';
import { guardChildren, rssMb, sleep, stopAll } from './lib/procs.js';

const seconds = Number(process.env.SOAK_SECONDS ?? 600);
const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 16);
const allowedGrowthMb = Number(process.env.SOAK_RSS_GROWTH_MB ?? 40);
const dir = mkdtempSync(join(tmpdir(), 'proxygpt-soak-'));
guardChildren((seconds + 180) * 1000, (reason) => console.error(`soak: ABORTED: ${reason}`));

const body = (stream: boolean) => JSON.stringify({ model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'Say something about the sea.' }] });
type Kind = 'json' | 'stream' | 'abandoned' | 'upstream-error';
const KINDS: [Kind, number][] = [
  ['json', 0.45],
  ['stream', 0.3],
  ['abandoned', 0.15],
  ['upstream-error', 0.1],
];
function pick(): Kind {
  let r = Math.random();
  for (const [kind, share] of KINDS) if ((r -= share) < 0) return kind;
  return 'json';
}

try {
  console.error(`soak: ${buildIfStale(false)}`);
  const mock = await startMock(dir);
  const gw = await startGateway(mock.port, dir, { workers: 1, logLevel: 'warn', name: 'gateway-soak' });
  const key = await createStoredKey(gw.port, 'soak');
  const pool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: concurrency });
  const sent: Record<Kind, number> = { json: 0, stream: 0, abandoned: 0, 'upstream-error': 0 };
  let errors = 0;
  const errorSamples: string[] = [];
  const deadline = Date.now() + seconds * 1000;
  const startMb = rssMb(gw.child.proc.pid);

  async function one(kind: Kind): Promise<void> {
    const stream = kind === 'stream' || kind === 'abandoned';
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-mock-chunks': stream ? '20' : '3', 'x-mock-chunk-delay-ms': '5' };
    if (kind === 'upstream-error') headers['x-mock-status'] = '500';
    const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body: body(stream) });
    sent[kind]++;
    const expected = kind === 'upstream-error' ? 500 : 200;
    if (res.statusCode !== expected) {
      errors++;
      if (errorSamples.length < 5) errorSamples.push(`${kind}: ${res.statusCode} ${(await res.body.text()).slice(0, 200)}`);
      return;
    }
    if (kind === 'abandoned') {
      for await (const _chunk of res.body) break; // the first bytes, then the client leaves
      res.body.destroy();
      return;
    }
    await res.body.text();
  }

  async function worker(): Promise<void> {
    while (Date.now() < deadline) {
      try {
        await one(pick());
      } catch (err) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(`client error: ${(err as Error).message}`);
      }
    }
  }

  const rss: { at: number; mb: number }[] = [];
  const sampler = setInterval(() => {
    const mb = rssMb(gw.child.proc.pid);
    if (mb === null) return;
    rss.push({ at: Math.round((Date.now() - (deadline - seconds * 1000)) / 1000), mb });
    if (rss.length === 1) rss.unshift({ at: 0, mb: startMb ?? mb });
    const total = Object.values(sent).reduce((a, b) => a + b, 0);
    console.log(`soak: t=${rss.at(-1)!.at}s rss=${mb.toFixed(0)} MB calls=${total} errors=${errors}`);
  }, 10_000);
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearInterval(sampler);
  await pool.close();

  // createStoredKey made one call with the key to check it works.
  const total = Object.values(sent).reduce((a, b) => a + b, 0) + 1;
  // Every call settles within moments of its end (an abandoned stream: when the gateway notices).
  let counted = -1;
  let recorded = -1;
  for (let i = 0; i < 50 && (counted !== total || recorded !== total); i++) {
    await sleep(200);
    const rate = (await (await fetch(`http://127.0.0.1:${gw.port}/ratelimit`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      key: { limits: Record<string, { used: number }> };
    };
    counted = rate.key.limits.requests_per_hour?.used ?? -1;
    recorded = (await keyUsage(gw.port, 'soak')).requests;
  }
  const afterMinute = rss.find((s) => s.at >= 60) ?? rss[0];
  const end = rss.at(-1);
  console.log('');
  console.log(`soak: ${seconds} s, ${concurrency} connections, ${total} calls (${Object.entries(sent).map(([k, n]) => `${k} ${n}`).join(', ')})`);
  console.log(`soak: errors ${errors}${errorSamples.length > 0 ? `: ${errorSamples.join(' | ')}` : ''}`);
  console.log(`soak: sent ${total} (with the key's check call), counted ${counted} (key requests per hour), recorded ${recorded} (usage records)`);
  console.log(`soak: RSS ${rss[0]?.mb.toFixed(0)} MB at ${rss[0]?.at}s, ${afterMinute?.mb.toFixed(0)} MB after a minute, ${end?.mb.toFixed(0)} MB at the end`);
  const countsExact = counted === total && recorded === total;
  const flat = afterMinute === undefined || end === undefined || end.mb - afterMinute.mb <= allowedGrowthMb;
  console.log(`soak: counts ${countsExact ? 'EXACT' : 'WRONG'}, RSS ${flat ? 'FLAT' : `GREW past ${allowedGrowthMb} MB`}, errors ${errors === 0 ? 'NONE' : errors}`);
  process.exitCode = countsExact && flat && errors === 0 ? 0 : 1;
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
