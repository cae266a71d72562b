/**
 * The limits of one call: which rules apply to a caller (the gateway's global ones, plus a stored
 * key's own), what a call reserves in each series (a request slot; for keys with token or spend
 * limits an estimate of its tokens and their price), the 429 with an exact Retry-After when it
 * does not fit, and what it finally counts once it is over (the `success` mode counts a held
 * request slot only for a 2xx answer; held tokens and spend become what the call really used).
 */
import type { Principal } from '../auth/authenticator.js';
import type { CountMode } from '../config.js';
import { concurrencyLimited, rateLimited } from '../errors.js';
import type { PriceBook } from '../metering/price-book.js';
import { costAt, type PriceTable } from '../metering/prices.js';
import type { KeyPolicy, LimitRule, Limiter, ModelPrice, Reservation, RuleState, SeriesCost, TokenUsage } from '../contract.js';
import { totalTokens } from '../metering/usage.js';
import { formatResetDuration, tightest } from './limiter.js';
import { hasUsageLimits, isConcurrencyRule, keyRules, keySeries } from './rules.js';

/** What admission produced: the reservation to settle and the headers every response carries. */
export interface Admission {
  reservation: Reservation | null;
  headers: Record<string, string>;
  /** Series this call reserved in, by quantity (`concurrent`: the caps on calls in flight, held until settled). */
  series: { requests: string[]; concurrent: string[]; tokens: string | null; usd: string | null };
  model: string | null;
}

const NO_USAGE: TokenUsage = Object.freeze({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });

/**
 * An amount the limiter can count (a non-negative safe integer): tokens and prices are bounded
 * before they get here, but a product of the largest of both must still not make the limiter
 * throw (a reservation that large is refused as over the limit; a settlement is counted in full).
 */
const countable = (amount: number): number => (Number.isNaN(amount) ? 0 : Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.ceil(amount))));

/** Header names per unit, built once (names made per call cost a string table lookup each). */
const RATE_LIMIT_HEADER_NAMES = (['requests', 'tokens'] as const).map((unit) => ({
  unit,
  limit: `x-ratelimit-limit-${unit}`,
  remaining: `x-ratelimit-remaining-${unit}`,
  reset: `x-ratelimit-reset-${unit}`,
}));

/**
 * OpenAI's x-ratelimit-* headers for the tightest rule of each unit (or `refusing`, on a 429).
 * Concurrency caps are no request windows: they never stand for the requests limit.
 */
export function rateLimitHeaders(states: readonly RuleState[], refusing?: RuleState): Record<string, string> {
  const headers: Record<string, string> = {};
  const windows = states.some(isConcurrencyRule) ? states.filter((s) => !isConcurrencyRule(s)) : states;
  for (const names of RATE_LIMIT_HEADER_NAMES) {
    const state = refusing?.unit === names.unit && !isConcurrencyRule(refusing) ? refusing : tightest(windows, names.unit);
    if (state === undefined) continue;
    headers[names.limit] = String(state.limit);
    headers[names.remaining] = String(state.remaining);
    headers[names.reset] = formatResetDuration(state.resetMs);
  }
  return headers;
}

const RULE_WORDS: Record<string, string> = {
  hourly: 'requests per hour for this gateway',
  daily: 'requests per day for this gateway',
  key_requests_per_hour: 'requests per hour for this key',
  key_requests_per_day: 'requests per day for this key',
  key_tokens_per_hour: 'tokens per hour for this key',
  key_tokens_per_day: 'tokens per day for this key',
  key_usd_per_day: 'USD per day for this key',
  key_usd_per_month: 'USD per calendar month for this key',
  concurrent: 'calls in flight at once for this gateway',
  key_concurrent: 'calls in flight at once for this key',
};

function describeLimit(state: RuleState): string {
  const amount = state.unit === 'usd' ? `$${(state.limit / 1e6).toFixed(2)}` : String(state.limit);
  return `${amount} ${RULE_WORDS[state.name] ?? state.name}`;
}

/** The highest cost of `usage` among the upstreams' prices (null: the table's), or the table's when there are none. */
function dearest(table: PriceTable, model: string | null, usage: TokenUsage, upstreamPrices: readonly (ModelPrice | null)[]): number {
  if (upstreamPrices.length === 0) return table.costMicroUsd(model, usage);
  let most = 0;
  for (const price of upstreamPrices) most = Math.max(most, price === null ? table.costMicroUsd(model, usage) : costAt(price, usage));
  return most;
}

/** A caller's rules and what every call of theirs reserves regardless of its size. */
interface ReservePlan {
  /** The stored key the plan is for (null: the gateway's own rules only). */
  keyId: string | null;
  rules: readonly LimitRule[];
  /** Shared by every admission of the plan: read, never changed. */
  series: Admission['series'];
  /** A request slot per request series, one held slot per concurrency cap. */
  fixedCosts: Readonly<Record<string, SeriesCost>>;
}

function planOf(rules: LimitRule[], keyId: string | null, holdRequests: boolean): ReservePlan {
  const own = keyId === null ? null : keySeries(keyId);
  const series: Admission['series'] = { requests: [], concurrent: [], tokens: null, usd: null };
  const fixedCosts: Record<string, SeriesCost> = {};
  for (const rule of rules) {
    if (isConcurrencyRule(rule)) {
      // One slot, held while the call is in flight, counted as nothing when it ends.
      fixedCosts[rule.series] = { amount: 1, hold: true };
      series.concurrent.push(rule.series);
    } else if (rule.unit === 'requests' && fixedCosts[rule.series] === undefined) {
      fixedCosts[rule.series] = { amount: 1, hold: holdRequests };
      series.requests.push(rule.series);
    }
  }
  if (own !== null) {
    if (rules.some((r) => r.series === own.tokens)) series.tokens = own.tokens;
    if (rules.some((r) => r.series === own.usd)) series.usd = own.usd;
  }
  // Frozen, rules and array: the cluster limiter then sends the set to its primary once (cluster.ts).
  const frozen = Object.freeze(rules.map((rule) => Object.freeze({ ...rule })));
  return { keyId, rules: frozen, series, fixedCosts };
}

export interface CallLimitsOptions {
  limiter: Limiter;
  prices: PriceBook;
  /** The gateway's own rules (from the environment), applied to every caller. */
  globalRules: LimitRule[];
  /** `success`: request slots are held while in flight and count only for a 2xx answer. */
  countMode: CountMode;
  /** Told the name of the rule that refused a call, before its 429 is thrown (the metrics). */
  onRefused?: (rule: string) => void;
}

export class CallLimits {
  readonly globalRules: LimitRule[];
  private readonly limiter: Limiter;
  private readonly prices: PriceBook;
  private readonly holdRequests: boolean;
  private readonly onRefused: ((rule: string) => void) | undefined;
  private globalPlan: ReservePlan | undefined;
  private readonly keyPlans = new WeakMap<KeyPolicy, ReservePlan>();

  constructor(options: CallLimitsOptions) {
    this.limiter = options.limiter;
    this.onRefused = options.onRefused;
    this.prices = options.prices;
    this.globalRules = options.globalRules;
    this.holdRequests = options.countMode === 'success';
  }

  rulesFor(principal: Principal): readonly LimitRule[] {
    return this.planFor(principal).rules;
  }

  /**
   * The caller's rules and the fixed part of what a call reserves, worked out once per policy
   * object: a store that keeps a key between calls (the SQLite store until the key changes) hands
   * out the same policy object each time, so the plan is made once per version of the key; a store
   * that reads the key anew each call gives a new object, and the plan is made anew (never stale).
   */
  private planFor(principal: Principal): ReservePlan {
    if (principal.policy === null) return (this.globalPlan ??= planOf(this.globalRules, null, this.holdRequests));
    const known = this.keyPlans.get(principal.policy);
    if (known !== undefined && known.keyId === principal.id) return known;
    const plan = planOf([...this.globalRules, ...keyRules(principal.id, principal.policy)], principal.id, this.holdRequests);
    this.keyPlans.set(principal.policy, plan);
    return plan;
  }

  /** Whether reserving for this caller needs a token estimate (it has token or spend limits). */
  needsUsageEstimate(principal: Principal): boolean {
    return principal.policy !== null && hasUsageLimits(principal.policy);
  }

  /**
   * Reserves in every applicable window, atomically, or throws the 429 that says how long to wait.
   * `upstreamPrices`: what the model costs on each upstream the call may go to (null: the
   * gateway's table); the spend reserved is the dearest, so that no failover costs more.
   */
  async reserve(principal: Principal, model: string | null, estimate: TokenUsage | null, upstreamPrices: readonly (ModelPrice | null)[] = []): Promise<Admission> {
    const plan = this.planFor(principal);
    const { rules, series } = plan;
    if (rules.length === 0) return { reservation: null, headers: {}, series, model };

    const costs: Record<string, SeriesCost> = { ...plan.fixedCosts };
    if (series.tokens !== null || series.usd !== null) {
      const usage = estimate ?? NO_USAGE;
      if (series.tokens !== null) costs[series.tokens] = { amount: countable(totalTokens(usage)), hold: true };
      if (series.usd !== null) costs[series.usd] = { amount: countable(dearest(await this.prices.current(), model, usage, upstreamPrices)), hold: true };
    }

    const decision = await this.limiter.reserve(rules, costs);
    if (decision.admitted) return { reservation: decision.reservation ?? null, headers: rateLimitHeaders(decision.states), series, model };

    const blocked = decision.states.find((s) => s.name === decision.blockedBy) ?? decision.states[0]!;
    this.onRefused?.(blocked.name);
    const headers = rateLimitHeaders(decision.states, blocked);
    if (isConcurrencyRule(blocked)) {
      // Room comes back the moment one of the calls in flight ends: nobody knows when.
      throw concurrencyLimited({
        message: `Too many calls in flight: ${describeLimit(blocked)}. Retry when one of them has finished.`,
        headers: { ...headers, 'retry-after': '1', 'retry-after-ms': '1000' },
      });
    }
    if (decision.retryAfterMs === undefined) {
      throw rateLimited({
        message: `This request alone needs more than the limit of ${describeLimit(blocked)} (estimated from its prompt and max tokens). Lower max_tokens or ask your admin for a higher limit.`,
        unit: blocked.unit,
        headers,
      });
    }
    const retryMs = decision.retryAfterMs;
    const retrySeconds = Math.max(1, Math.ceil(retryMs / 1000));
    throw rateLimited({
      message: `Rate limit reached: ${describeLimit(blocked)}. Try again in ${retrySeconds}s. See GET /ratelimit for the current usage.`,
      unit: blocked.unit,
      headers: { ...headers, 'retry-after': String(retrySeconds), 'retry-after-ms': String(Math.ceil(retryMs)) },
    });
  }

  /**
   * Counts what a call used, once it is over: held request slots count only for a 2xx `status`
   * in the `success` mode; held tokens and spend become `usage` (nothing when null: the upstream
   * failed, or answered an error without usage), priced at `price` (the upstream's own; null: the
   * gateway's table). Returns the call's cost in micro-dollars.
   */
  async settle(admission: Admission, status: number | null, usage: TokenUsage | null, price: ModelPrice | null = null): Promise<number> {
    const costMicroUsd = usage === null ? 0 : countable(price !== null ? costAt(price, usage) : (await this.prices.current()).costMicroUsd(admission.model, usage));
    const reservation = admission.reservation;
    if (reservation !== null && Object.keys(reservation.held).length > 0) {
      const ok = status !== null && status >= 200 && status < 300;
      const actual: Record<string, number> = {};
      for (const s of admission.series.requests) actual[s] = ok ? 1 : 0;
      for (const s of admission.series.concurrent) actual[s] = 0;
      if (admission.series.tokens !== null) actual[admission.series.tokens] = usage === null ? 0 : countable(totalTokens(usage));
      if (admission.series.usd !== null) actual[admission.series.usd] = costMicroUsd;
      await this.limiter.commit(reservation, actual);
    }
    return costMicroUsd;
  }

  /**
   * Drops what a call holds without counting it: for a call whose `settle` failed (the limiter
   * could not commit), so that its hold does not block the key until it expires.
   */
  async release(admission: Admission): Promise<void> {
    if (admission.reservation !== null && Object.keys(admission.reservation.held).length > 0) await this.limiter.release(admission.reservation);
  }

  /** Current state of the caller's limits: the global ones and its key's own. */
  async status(principal: Principal): Promise<{ global: RuleState[]; key: RuleState[] }> {
    const rules = this.rulesFor(principal);
    const states = rules.length === 0 ? [] : await this.limiter.peek(rules);
    return { global: states.filter((s) => !s.name.startsWith('key_')), key: states.filter((s) => s.name.startsWith('key_')) };
  }
}
