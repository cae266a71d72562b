/**
 * Throughput under concurrent load with autocannon: for each connection count, `rounds` rounds in
 * which every target gets `seconds` of load in turn (rotating order), after a short warm-up each.
 * Requests/s is pooled over the rounds (all 2xx answers / all measured time); latencies are each
 * response's own time in ms (autocannon's histogram keeps whole milliseconds only, so the bench
 * collects the exact times from its `response` events).
 *
 * CPU time per call: the serving process tree's utime + stime (from /proc) read right before and
 * after each measured round, summed over the rounds and divided by the calls it answered (2xx and
 * non-2xx); warm-ups are not counted.
 */
import autocannon from 'autocannon';
import { CHAT_PATH, chatBody, type Target } from './targets.js';
import { clockTicksPerSecond, ticksBetween, treeTicks } from './cpu.js';
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
  /** CPU time of the serving process tree per call answered, in µs; null when not readable. */
  cpuUsPerCall: number | null;
  /** CPU seconds of the serving tree over the measured rounds (resolution: one clock tick). */
  cpuSeconds: number | null;
}

interface RoundOutcome {
  ok: number;
  seconds: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latencies: number[];
  /** CPU ticks of the serving tree during the round; null when not readable. */
  ticks: number | null;
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
          ticks: null,
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
    for (const target of rotate(targets, r)) {
      const before = treeTicks(target.pid);
      const outcome = await cannon(target, connections, seconds);
      const after = treeTicks(target.pid);
      outcome.ticks = before && after ? ticksBetween(before, after) : null;
      outcomes.get(target.name)!.push(outcome);
    }
  }
  return targets.map((target) => {
    const own = outcomes.get(target.name)!;
    const ok = own.reduce((n, o) => n + o.ok, 0);
    const time = own.reduce((n, o) => n + o.seconds, 0);
    const lat = sorted(own.flatMap((o) => o.latencies));
    const served = ok + own.reduce((n, o) => n + o.non2xx, 0);
    const cpuSeconds = own.every((o) => o.ticks !== null) ? own.reduce((n, o) => n + o.ticks!, 0) / clockTicksPerSecond() : null;
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
      cpuUsPerCall: cpuSeconds === null || served === 0 ? null : (cpuSeconds * 1e6) / served,
      cpuSeconds,
    };
  });
}
