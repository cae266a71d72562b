/**
 * The upstreams one model can go to (its candidates), and how a call picks among them: an
 * upstream by weight (smooth weighted round robin, one turn order per set of candidates), then one
 * of its keys by weight, passing over what is not available now (breaker open, sitting out a 429)
 * and what this call has tried already. Also what the model may cost on each candidate, so that a
 * reservation covers the dearest.
 */
import type { ModelPrice } from '../contract.js';
import type { Clock } from '../limits/limiter.js';
import type { SmoothWeighted } from './balancer.js';
import type { ServedAs, Upstream, UpstreamKeyEntry } from './upstream.js';

/** One upstream that serves the route's model, and how. */
export interface Candidate extends ServedAs {
  upstream: Upstream;
  /** The upstream's own price for the model; null: the gateway's table. */
  price: ModelPrice | null;
}

/** One attempt's choice: where, with which key, and whether it is the half-open breaker's probe. */
export interface Pick {
  candidate: Candidate;
  key: UpstreamKeyEntry;
  probe: boolean;
}

/** What every route of one gateway shares: the retry budget and the clock of breakers and cooldowns. */
export interface RoutingPolicy {
  /** Most attempts one call makes. */
  attempts: number;
  /** A call's attempts all end within this (PROXYGPT_UPSTREAM_TIMEOUT_MS). */
  callTimeoutMs: number;
  clock: Clock;
}

/** What this call has already tried: keys, and upstreams it could not reach at all. */
export interface Tried {
  keys: Set<UpstreamKeyEntry>;
  upstreams: Set<Upstream>;
}

export class Route {
  /** Per candidate, its own price of the model (null: the gateway's), in the candidates' order. */
  readonly prices: readonly (ModelPrice | null)[];

  constructor(
    readonly model: string | null,
    readonly candidates: readonly Candidate[],
    private readonly turns: SmoothWeighted,
    readonly policy: RoutingPolicy,
  ) {
    this.prices = candidates.map((c) => c.price);
  }

  /** When some candidate can take a call (at or before `now`: one can now). */
  availableAt(now: number, tried?: Tried): number {
    let at = Infinity;
    for (const c of this.candidates) {
      if (tried?.upstreams.has(c.upstream)) continue;
      at = Math.min(at, c.upstream.availableAt(now, tried?.keys));
    }
    return at;
  }

  /** Whether every candidate that is out is only sitting out a 429 (then the route is rate limited, not down). */
  onlyRateLimited(now: number): boolean {
    return this.candidates.every((c) => c.upstream.keys.every((k) => k.health.availableAt(now) <= now || k.health.coolingDown(now)));
  }

  /** The next upstream and key for an attempt, or null when nothing untried is available now. Takes a half-open key's probe. */
  pick(tried: Tried): Pick | null {
    const now = this.policy.clock();
    const index = this.turns.next((i) => {
      const upstream = this.candidates[i]!.upstream;
      return !tried.upstreams.has(upstream) && upstream.availableAt(now, tried.keys) <= now;
    });
    if (index === -1) return null;
    const candidate = this.candidates[index]!;
    const key = candidate.upstream.nextKey(now, tried.keys);
    if (key === null) return null; // cannot happen: the upstream had an available key a moment ago
    return { candidate, key, probe: key.health.take(now) };
  }
}
