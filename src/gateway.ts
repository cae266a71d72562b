/**
 * The request path, step by step: auth → policy → limiter reserve → forward → limiter settle →
 * record. Route modules call these steps in this order; nothing here knows about HTTP frameworks.
 */
import type { Config } from './config.js';
import { ApiError } from './errors.js';
import type { KeyRing, Principal } from './auth/keys.js';
import type { Policy } from './policy/policy.js';
import { formatResetDuration, tightest, type LimitRule, type Limiter, type Reservation, type RuleState } from './limits/limiter.js';
import type { Upstream } from './proxy/forward.js';
import type { UsageRecorder } from './store/recorder.js';
import type { Redactor } from './redact.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const GLOBAL_REQUESTS = 'global:requests';

/** The global request rules the configuration enables (none: the limiter is never consulted). */
export function globalRules(config: Pick<Config, 'hourlyRateLimit' | 'dailyRateLimit'>): LimitRule[] {
  const rules: LimitRule[] = [];
  if (config.hourlyRateLimit !== null) rules.push({ name: 'hourly', series: GLOBAL_REQUESTS, windowMs: HOUR_MS, limit: config.hourlyRateLimit });
  if (config.dailyRateLimit !== null) rules.push({ name: 'daily', series: GLOBAL_REQUESTS, windowMs: DAY_MS, limit: config.dailyRateLimit });
  return rules;
}

/** What admission produced: the reservation to settle and the headers every response carries. */
export interface Admission {
  reservation: Reservation | null;
  headers: Record<string, string>;
}

export function rateLimitHeaders(states: readonly RuleState[]): Record<string, string> {
  const state = tightest(states);
  if (state === undefined) return {};
  return {
    'x-ratelimit-limit-requests': String(state.limit),
    'x-ratelimit-remaining-requests': String(state.remaining),
    'x-ratelimit-reset-requests': formatResetDuration(state.resetMs),
  };
}

const WINDOW_NAMES: Record<string, string> = { hourly: 'per hour', daily: 'per day' };

export class Gateway {
  readonly rules: LimitRule[];

  constructor(
    readonly config: Config,
    readonly keys: KeyRing,
    readonly policy: Policy,
    readonly limiter: Limiter,
    readonly upstream: Upstream,
    readonly recorder: UsageRecorder,
    readonly redactor: Redactor,
  ) {
    this.rules = globalRules(config);
  }

  /** Step 1: who is calling (401 otherwise). */
  authenticate(authorization: string | string[] | undefined): Principal {
    return this.keys.authenticate(authorization);
  }

  /** Step 3: reserve one request in every active window, atomically, or throw 429. */
  async admit(): Promise<Admission> {
    if (this.rules.length === 0) return { reservation: null, headers: {} };
    const decision = await this.limiter.reserve(this.rules, { cost: 1, hold: this.config.countMode === 'success' });
    if (decision.admitted) return { reservation: decision.reservation ?? null, headers: rateLimitHeaders(decision.states) };

    // A refusal describes the rule that refused, so x-ratelimit-reset-requests and Retry-After
    // speak of the same window (with both rules full, the tightest by remaining could be the other).
    const blocked = decision.states.find((s) => s.name === decision.blockedBy) ?? decision.states[0]!;
    const headers = rateLimitHeaders([blocked]);
    const retryMs = decision.retryAfterMs ?? blocked.windowMs;
    const retrySeconds = Math.max(1, Math.ceil(retryMs / 1000));
    throw new ApiError(
      429,
      `Rate limit reached: ${blocked.limit} requests ${WINDOW_NAMES[blocked.name] ?? blocked.name} for this gateway. ` +
        `Try again in ${retrySeconds}s. See GET /ratelimit for the current usage.`,
      'requests',
      'rate_limit_exceeded',
      { ...headers, 'retry-after': String(retrySeconds), 'retry-after-ms': String(Math.ceil(retryMs)) },
    );
  }

  /**
   * Step 5: settle a reservation once the upstream's status is known. In `success` mode a 2xx
   * commits the held request and anything else (or no answer) releases it; in `all` mode the
   * request was counted at admission and there is nothing to do.
   */
  async settle(admission: Admission, upstreamStatus: number | null): Promise<void> {
    const reservation = admission.reservation;
    if (reservation === null || !reservation.held) return;
    if (upstreamStatus !== null && upstreamStatus >= 200 && upstreamStatus < 300) await this.limiter.commit(reservation);
    else await this.limiter.release(reservation);
  }

  async status(): Promise<RuleState[]> {
    return this.rules.length === 0 ? [] : this.limiter.peek(this.rules);
  }
}
