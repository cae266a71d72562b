/**
 * One upstream at run time: its connection pool, its keys (each with its health, taking turns by
 * weight), which client models it serves and under what name, its prices, and how a call below
 * /v1 is addressed to it: OpenAI and OpenAI-compatible servers take the path as it is below their
 * base URL and the key as `Authorization: Bearer`; Azure OpenAI takes
 * `/openai/deployments/{deployment}/…?api-version=…` and the key as `api-key`.
 */
import picomatch from 'picomatch';
import type { ModelPrice } from '../contract.js';
import { UpstreamPool } from '../proxy/forward.js';
import { SmoothWeighted } from './balancer.js';
import { KeyHealth } from './health.js';
import { EVERY_MODEL, type ModelRoute, type UpstreamKind, type UpstreamSpec } from './spec.js';

/** One key of an upstream (or the one entry of an upstream without a key). */
export interface UpstreamKeyEntry {
  /** null: the upstream takes no key. */
  readonly secret: string | null;
  /** What the admin API and logs show: the key's last 4 characters, or `none`. */
  readonly hint: string;
  /** The environment variable the key came from. */
  readonly source: string;
  readonly health: KeyHealth;
}

/** How a client model is served by this upstream: the model name in the body and the Azure deployment. */
export interface ServedAs {
  /** The body's model for this upstream; null: the client's, unchanged. */
  model: string | null;
  /** Azure: the deployment; null for the other kinds. */
  deployment: string | null;
}

type Matcher = (model: string) => boolean;

const matcherOf = (pattern: string): Matcher => (pattern === EVERY_MODEL ? () => true : picomatch(pattern, { dot: true }));

/** Whether a pattern is a glob (matches more than one name) rather than one model's name. */
export const isGlob = (pattern: string): boolean => picomatch.scan(pattern).isGlob;

/** `…cdef`: enough to tell keys apart, nothing to use. */
export const keyHint = (secret: string | null): string => (secret === null ? 'none' : `…${secret.slice(-4)}`);

export class Upstream {
  readonly name: string;
  readonly kind: UpstreamKind;
  readonly weight: number;
  /** Headers timeout and the wait between body chunks for this upstream. */
  readonly timeoutMs: number;
  readonly pool: UpstreamPool;
  readonly keys: readonly UpstreamKeyEntry[];
  private readonly keyTurns: SmoothWeighted;
  private readonly models: { route: ModelRoute; test: Matcher }[];
  private readonly prices: { pattern: string; price: ModelPrice; test: Matcher }[];
  /** Azure's query for a call that has none of its own (nearly all). */
  private readonly apiVersionQuery: string;

  constructor(
    readonly spec: UpstreamSpec,
    /** PROXYGPT_UPSTREAM_TIMEOUT_MS: the timeout of an upstream that sets none. */
    defaultTimeoutMs: number,
  ) {
    this.name = spec.name;
    this.kind = spec.kind;
    this.weight = spec.weight;
    this.timeoutMs = spec.timeoutMs ?? defaultTimeoutMs;
    const keys = spec.keys.length === 0 ? [{ secret: null, weight: 1, source: '' }] : spec.keys;
    this.keys = keys.map((k) => ({ secret: k.secret, hint: keyHint(k.secret), source: k.source, health: new KeyHealth(spec.breaker) }));
    this.keyTurns = new SmoothWeighted(keys.map((k) => k.weight));
    this.pool = new UpstreamPool(spec.baseUrl, keys[0]!.secret, this.timeoutMs, null, spec.kind === 'azure' ? 'api-key' : 'bearer');
    this.models = spec.models.map((route) => ({ route, test: matcherOf(route.pattern) }));
    // An exact name wins over a glob, then the file's order.
    const priced = Object.entries(spec.prices ?? {}).map(([pattern, price]) => ({ pattern, price, test: matcherOf(pattern) }));
    this.prices = [...priced.filter((p) => !isGlob(p.pattern) && p.pattern !== EVERY_MODEL), ...priced.filter((p) => isGlob(p.pattern) || p.pattern === EVERY_MODEL)];
    this.apiVersionQuery = `?${new URLSearchParams({ 'api-version': spec.apiVersion ?? '' }).toString()}`;
  }

  /** How this upstream serves `model` (the first entry of its `models` that matches), or null when it does not. */
  serves(model: string): ServedAs | null {
    for (const { route, test } of this.models) {
      if (!test(model)) continue;
      const deployment = this.kind === 'azure' ? (route.deployment ?? route.model ?? model) : null;
      return { model: route.model === model ? null : route.model, deployment };
    }
    return null;
  }

  /** The model names this upstream lists as they are (its entries that are not globs). */
  namedModels(): string[] {
    return this.models.filter((m) => m.route.pattern !== EVERY_MODEL && !isGlob(m.route.pattern)).map((m) => m.route.pattern);
  }

  /** Whether `model`, a name the upstream itself lists, is one its globs serve. */
  servesListed(model: string): boolean {
    return this.models.some((m) => (m.route.pattern === EVERY_MODEL || isGlob(m.route.pattern)) && m.test(model));
  }

  /** Whether some entry of `models` is a glob (its names come from the upstream's own list). */
  get hasGlobs(): boolean {
    return this.models.some((m) => m.route.pattern === EVERY_MODEL || isGlob(m.route.pattern));
  }

  /** This upstream's own price for `model`, or null when it sets none (the gateway's table applies). */
  priceOf(model: string | null): ModelPrice | null {
    if (model === null) return null;
    return this.prices.find((p) => p.test(model))?.price ?? null;
  }

  /** When one of the keys can take a call (at or before `now`: one can now). */
  availableAt(now: number, skip?: ReadonlySet<UpstreamKeyEntry>): number {
    let at = Infinity;
    for (const key of this.keys) if (skip === undefined || !skip.has(key)) at = Math.min(at, key.health.availableAt(now));
    return at;
  }

  /** The next key by weight among those available now and not in `skip`, or null. */
  nextKey(now: number, skip: ReadonlySet<UpstreamKeyEntry>): UpstreamKeyEntry | null {
    const index = this.keyTurns.next((i) => !skip.has(this.keys[i]!) && this.keys[i]!.health.availableAt(now) <= now);
    return index === -1 ? null : this.keys[index]!;
  }

  /**
   * Where a call below /v1 (`/chat/completions`, with its query) goes on this upstream: below the
   * base URL as it is, or for Azure to the deployment's path with `api-version` set (a request
   * that names no model, such as a model list, to `/openai/…`).
   */
  address(path: string, search: string, deployment: string | null): { path: string; search: string } {
    if (this.kind !== 'azure') return { path, search };
    let query = this.apiVersionQuery;
    if (search !== '') {
      const params = new URLSearchParams(search);
      params.set('api-version', this.spec.apiVersion ?? '');
      query = `?${params.toString()}`;
    }
    return { path: deployment === null ? `/openai${path}` : `/openai/deployments/${encodeURIComponent(deployment)}${path}`, search: query };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
