/**
 * The request path, step by step: auth → policy → limiter reserve → forward → meter → limiter
 * settle → record. Route modules call these steps in this order; nothing here knows about HTTP
 * frameworks. Global limits come from the environment; a stored key adds its own on top.
 */
import type { Config } from './config.js';
import { rateLimited } from './errors.js';
import type { Authenticator, Principal } from './auth/authenticator.js';
import type { Policy } from './policy/policy.js';
import type { KeyAccessCache } from './policy/key-access.js';
import { formatResetDuration, tightest, type LimitRule, type Limiter, type Reservation, type RuleState, type SeriesCost } from './limits/limiter.js';
import { globalRules, hasUsageLimits, keyRules, keySeries } from './limits/rules.js';
import type { Upstream } from './proxy/forward.js';
import type { UsageRecorder } from './store/recorder.js';
import type { Redactor } from './redact.js';
import type { PriceBook } from './metering/price-book.js';
import { totalTokens, type TokenUsage } from './metering/usage.js';

/** What admission produced: the reservation to settle and the headers every response carries. */
export interface Admission {
  reservation: Reservation | null;
  headers: Record<string, string>;
  /** Series this call reserved in, by quantity. */
  series: { requests: string[]; tokens: string | null; usd: string | null };
  model: string | null;
}

/** What a settled call cost. */
export interface Settlement {
  usage: TokenUsage;
  costMicroUsd: number;
}

/** Header names per unit, built once (names made per call cost a string table lookup each). */
const RATE_LIMIT_HEADER_NAMES = (['requests', 'tokens'] as const).map((unit) => ({
  unit,
  limit: `x-ratelimit-limit-${unit}`,
  remaining: `x-ratelimit-remaining-${unit}`,
  reset: `x-ratelimit-reset-${unit}`,
}));

/** OpenAI's x-ratelimit-* headers for the tightest rule of each unit (or `refusing`, on a 429). */
export function rateLimitHeaders(states: readonly RuleState[], refusing?: RuleState): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const names of RATE_LIMIT_HEADER_NAMES) {
    const state = refusing?.unit === names.unit ? refusing : tightest(states, names.unit);
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
};

function describeLimit(state: RuleState): string {
  const amount = state.unit === 'usd' ? `$${(state.limit / 1e6).toFixed(2)}` : String(state.limit);
  return `${amount} ${RULE_WORDS[state.name] ?? state.name}`;
}

export class Gateway {
  readonly globalRules: LimitRule[];

  constructor(
    readonly config: Config,
    readonly auth: Authenticator,
    readonly policy: Policy,
    readonly keyAccess: KeyAccessCache,
    readonly limiter: Limiter,
    readonly upstream: Upstream,
    readonly recorder: UsageRecorder,
    readonly redactor: Redactor,
    readonly prices: PriceBook,
  ) {
    this.globalRules = globalRules(config);
  }

  /** Step 1: who is calling (401 otherwise). */
  authenticate(authorization: string | string[] | undefined): Promise<Principal> {
    return this.auth.authenticate(authorization);
  }

  /** Step 2a: may this caller use this endpoint from this address (403 otherwise). */
  authorize(principal: Principal, method: string, path: string, ip: string): void {
    this.policy.checkEndpoint(method, path);
    const access = this.keyAccess.get(principal);
    if (access !== null) {
      access.checkIp(ip);
      access.checkEndpoint(method, path);
    }
  }

  /** Step 2b: may this caller use this model (403 otherwise). */
  checkModel(principal: Principal, model: string | null): void {
    this.policy.checkModel(model ?? undefined);
    this.keyAccess.get(principal)?.checkModel(model ?? undefined);
  }

  rulesFor(principal: Principal): LimitRule[] {
    return principal.policy === null ? this.globalRules : [...this.globalRules, ...keyRules(principal.id, principal.policy)];
  }

  /** Whether admission needs a token estimate (the caller has token or spend limits). */
  meters(principal: Principal): boolean {
    return principal.policy !== null && hasUsageLimits(principal.policy);
  }

  /** Step 3: reserve in every applicable window, atomically, or throw 429. */
  async admit(principal: Principal, model: string | null, estimate: TokenUsage | null): Promise<Admission> {
    const rules = this.rulesFor(principal);
    const series: Admission['series'] = { requests: [], tokens: null, usd: null };
    if (rules.length === 0) return { reservation: null, headers: {}, series, model };

    const holdRequests = this.config.countMode === 'success';
    const costs: Record<string, SeriesCost> = {};
    for (const rule of rules) {
      if (rule.unit === 'requests' && costs[rule.series] === undefined) {
        costs[rule.series] = { amount: 1, hold: holdRequests };
        series.requests.push(rule.series);
      }
    }
    if (principal.policy !== null) {
      const own = keySeries(principal.id);
      const usage = estimate ?? { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
      if (rules.some((r) => r.series === own.tokens)) {
        costs[own.tokens] = { amount: totalTokens(usage), hold: true };
        series.tokens = own.tokens;
      }
      if (rules.some((r) => r.series === own.usd)) {
        costs[own.usd] = { amount: (await this.prices.current()).costMicroUsd(model, usage), hold: true };
        series.usd = own.usd;
      }
    }

    const decision = await this.limiter.reserve(rules, costs);
    if (decision.admitted) return { reservation: decision.reservation ?? null, headers: rateLimitHeaders(decision.states), series, model };

    const blocked = decision.states.find((s) => s.name === decision.blockedBy) ?? decision.states[0]!;
    const headers = rateLimitHeaders(decision.states, blocked);
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
   * Step 6: settle once the call is over. Held request slots count only for a 2xx answer (the
   * `success` counting mode); held tokens and spend are replaced by what the call really used
   * (nothing when the upstream failed or answered an error without usage).
   */
  async settle(admission: Admission, status: number | null, usage: TokenUsage | null): Promise<Settlement> {
    const used = usage ?? { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
    const costMicroUsd = usage === null ? 0 : (await this.prices.current()).costMicroUsd(admission.model, used);
    const reservation = admission.reservation;
    if (reservation !== null && Object.keys(reservation.held).length > 0) {
      const ok = status !== null && status >= 200 && status < 300;
      const actual: Record<string, number> = {};
      for (const s of admission.series.requests) actual[s] = ok ? 1 : 0;
      if (admission.series.tokens !== null) actual[admission.series.tokens] = totalTokens(used);
      if (admission.series.usd !== null) actual[admission.series.usd] = costMicroUsd;
      await this.limiter.commit(reservation, actual);
    }
    return { usage: used, costMicroUsd };
  }

  /** Current state of the caller's limits: the global ones and its key's own. */
  async status(principal: Principal): Promise<{ global: RuleState[]; key: RuleState[] }> {
    const rules = this.rulesFor(principal);
    const states = rules.length === 0 ? [] : await this.limiter.peek(rules);
    return { global: states.filter((s) => !s.name.startsWith('key_')), key: states.filter((s) => s.name.startsWith('key_')) };
  }
}

