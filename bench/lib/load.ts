/**
 * Throughput under concurrent load with autocannon: for each connection count, `rounds` rounds in
 * which every target gets `seconds` of load in turn (rotating order), after a short warm-up each.
 * Requests/s is pooled over the rounds (all 2xx answers / all measured time); latencies are each
 * response's own time in ms (autocannon's histogram keeps whole milliseconds only, so the bench
 * collects the exact times from its `response` events).
 */
import autocannon from 'autocannon';
import { CHAT_PATH, chatBody, type Target } from './targets.js';
import { pct, rotate, sorted } from './stats.js';

export interface LoadFigures {
  target: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Requests/s of each round, in order. */
  roundRps: number[];
  non2xx: number;
  errors: number;
  timeouts: number;
}

interface RoundOutcome {
  ok: number;
  seconds: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencies: number[];
}

/** One autocannon run; `keep` false: warm-up, latencies not collected. */
export function cannon(target: Target, connections: number, seconds: number, keep = true): Promise<RoundOutcome> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.origin + CHAT_PATH,
        method: 'POST',
        headers: target.headers,
        body: chatBody(),
        connections,
        duration: seconds,
        timeout: 10,
      },
      (err, result) => {
        if (err) return reject(err);
        resolve({
          ok: result['2xx'],
          seconds: result.duration,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          latencies,
        });
      },
    );
    if (keep) {
      instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
        if (status >= 200 && status < 300) latencies.push(responseTime);
      });
    }
  });
}

export async function throughput(targets: Target[], connections: number, rounds: number, seconds: number, warmupSeconds: number): Promise<LoadFigures[]> {
  for (const target of targets) await cannon(target, connections, warmupSeconds, false);
  const outcomes = new Map<string, RoundOutcome[]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const target of rotate(targets, r)) outcomes.get(target.name)!.push(await cannon(target, connections, seconds));
  }
  return targets.map((target) => {
    const own = outcomes.get(target.name)!;
    const ok = own.reduce((n, o) => n + o.ok, 0);
    const time = own.reduce((n, o) => n + o.seconds, 0);
    const lat = sorted(own.flatMap((o) => o.latencies));
    return {
      target: target.name,
      connections,
      rps: ok / time,
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      requests: ok,
      roundRps: own.map((o) => o.ok / o.seconds),
      non2xx: own.reduce((n, o) => n + o.non2xx, 0),
      errors: own.reduce((n, o) => n + o.errors, 0),
      timeouts: own.reduce((n, o) => n + o.timeouts, 0),
    };
  });
}
