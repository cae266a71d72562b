/**
 * Sequential latency: one call at a time on a kept-alive connection per target, the targets
 * interleaved within each round (in rotating order), so the added latency of a round is
 * (target − direct) measured under the same machine conditions.
 *   - `sequentialLatency`: a whole non-streaming chat completion;
 *   - `firstByteLatency`: a streaming one, until the first body byte arrives.
 */
import { Pool } from 'undici';
import { CHAT_PATH, chatBody, type Target } from './targets.js';
import { rotate, summarise, type Summary } from './stats.js';

export interface LatencyResult {
  rounds: number;
  /** Per target: the call's duration in ms. */
  perTarget: Record<string, Summary>;
  /** Per target other than direct: (target − direct) per round, in ms. */
  added: Record<string, Summary>;
}

type Timer = (pool: Pool, target: Target) => Promise<number>;

const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

const wholeCall: Timer = async (pool, target) => {
  const start = process.hrtime.bigint();
  const res = await pool.request({ method: 'POST', path: CHAT_PATH, headers: target.headers, body: chatBody() });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${target.name} answered ${res.statusCode}`);
  return elapsedMs(start);
};

const firstByte: Timer = async (pool, target) => {
  const start = process.hrtime.bigint();
  const res = await pool.request({ method: 'POST', path: CHAT_PATH, headers: target.headers, body: chatBody(true) });
  if (res.statusCode !== 200) throw new Error(`${target.name} answered ${res.statusCode} to a stream`);
  let ms = NaN;
  for await (const _chunk of res.body) {
    if (Number.isNaN(ms)) ms = elapsedMs(start);
  }
  return ms;
};

async function interleaved(targets: Target[], rounds: number, warmup: number, timer: Timer): Promise<LatencyResult> {
  const pools = new Map(targets.map((t) => [t.name, new Pool(t.origin, { connections: 1 })]));
  const samples = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  try {
    for (let i = 0; i < warmup + rounds; i++) {
      for (const target of rotate(targets, i)) {
        const ms = await timer(pools.get(target.name)!, target);
        if (i >= warmup) samples.get(target.name)!.push(ms);
      }
    }
  } finally {
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
  const direct = samples.get('direct')!;
  const perTarget: Record<string, Summary> = {};
  const added: Record<string, Summary> = {};
  for (const target of targets) {
    const own = samples.get(target.name)!;
    perTarget[target.name] = summarise(own);
    if (target.name !== 'direct') added[target.name] = summarise(own.map((ms, i) => ms - direct[i]!));
  }
  return { rounds, perTarget, added };
}

/** `targets` must include one named `direct`. */
export const sequentialLatency = (targets: Target[], rounds: number, warmup: number) => interleaved(targets, rounds, warmup, wholeCall);

export const firstByteLatency = (targets: Target[], rounds: number, warmup: number) => interleaved(targets, rounds, warmup, firstByte);
