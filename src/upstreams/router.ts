/**
 * The upstreams of this gateway and the routes to them: built once from the configuration, it
 * answers which upstreams serve a model (a Route, cached per model name; null: none does, the
 * caller's 404) and keeps the state that routing shares across calls (turn orders, key health).
 * A request that names no model goes to the first upstream. Without an upstreams file there is
 * one upstream for every model, one attempt per call and no breaker: the gateway as it was.
 */
import type { Clock } from '../limits/limiter.js';
import { SmoothWeighted } from './balancer.js';
import type { KeyHealthView } from './health.js';
import { Route, type Candidate, type RoutingPolicy } from './route.js';
import type { UpstreamKind, UpstreamsConfig } from './spec.js';
import { Upstream } from './upstream.js';

/** Routes kept per model name; past this the cache starts over (model names come from clients). */
const MAX_CACHED_ROUTES = 10_000;
/** Longer model names are routed each time, never kept (10,000 of them could hold gigabytes). */
const MAX_CACHED_NAME = 256;

/** One upstream as the admin API shows it: no key, only each key's last characters and health. */
export interface UpstreamView {
  name: string;
  kind: UpstreamKind;
  baseUrl: string;
  weight: number;
  timeoutMs: number;
  models: string[];
  keys: (KeyHealthView & { key: string; source: string })[];
}

export class UpstreamRouter {
  readonly upstreams: readonly Upstream[];
  readonly policy: RoutingPolicy;
  /** From an upstreams file with several upstreams: the gateway answers GET /v1/models itself. */
  readonly listsModels: boolean;
  private readonly routes = new Map<string | null, Route | null>();
  private readonly turnOrders = new Map<string, SmoothWeighted>();

  constructor(config: UpstreamsConfig, options: { timeoutMs: number; clock: Clock }) {
    this.upstreams = config.upstreams.map((spec) => new Upstream(spec, options.timeoutMs));
    this.policy = { attempts: config.attempts, callTimeoutMs: options.timeoutMs, clock: options.clock };
    this.listsModels = config.file !== null && this.upstreams.length > 1;
  }

  /** The upstreams that serve `model`, or null when none does. A request without a model goes to the first upstream. */
  route(model: string | null): Route | null {
    const cached = this.routes.get(model);
    if (cached !== undefined) return cached;
    const route = this.build(model);
    if (model !== null && model.length > MAX_CACHED_NAME) return route;
    if (this.routes.size >= MAX_CACHED_ROUTES) this.routes.clear();
    this.routes.set(model, route);
    return route;
  }

  private build(model: string | null): Route | null {
    const candidates: Candidate[] = [];
    if (model === null) {
      const first = this.upstreams[0]!;
      candidates.push({ upstream: first, model: null, deployment: null, price: null });
    } else {
      for (const upstream of this.upstreams) {
        const served = upstream.serves(model);
        if (served !== null) candidates.push({ upstream, ...served, price: upstream.priceOf(model) });
      }
    }
    if (candidates.length === 0) return null;
    // One turn order per set of upstreams, shared by every model that set serves.
    const set = candidates.map((c) => c.upstream.name).join('\n');
    let turns = this.turnOrders.get(set);
    if (turns === undefined) {
      turns = new SmoothWeighted(candidates.map((c) => c.upstream.weight));
      this.turnOrders.set(set, turns);
    }
    return new Route(model, candidates, turns, this.policy);
  }

  /** Each upstream and key with its state now (for the admin API). */
  view(): UpstreamView[] {
    const now = this.policy.clock();
    return this.upstreams.map((u) => ({
      name: u.name,
      kind: u.kind,
      baseUrl: u.spec.baseUrl.href.replace(/\/$/, ''),
      weight: u.weight,
      timeoutMs: u.timeoutMs,
      models: u.spec.models.map((m) => m.pattern),
      keys: u.keys.map((k) => ({ key: k.hint, source: k.source, ...k.health.view(now) })),
    }));
  }

  async close(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.close()));
  }
}
