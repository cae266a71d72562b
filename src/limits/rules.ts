/**
 * Which limits apply to a call: the gateway's global request limits (from the environment) plus,
 * for a stored key, that key's own request, token and spend limits. Each quantity is one series,
 * so one event counts toward all of its windows.
 */
import type { Config } from '../config.js';
import type { KeyPolicy, LimitRule } from '../contract.js';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const MONTH_MS = 31 * DAY_MS;
export const GLOBAL_REQUESTS = 'global:requests';
export const GLOBAL_CONCURRENT = 'global:concurrent';

/**
 * A concurrency cap is a rule whose window has no length: no counted event is ever inside it,
 * only what calls in flight hold (one each, from admission until settled, streams until they end).
 * Every limiter then caps calls in flight exactly as it caps a window, across workers and
 * instances alike, and a crashed instance's calls leave the count when their holds expire.
 */
export const CONCURRENT_WINDOW_MS = 0;
export const isConcurrencyRule = (rule: Pick<LimitRule, 'windowMs' | 'calendarMonth'>): boolean => rule.windowMs === CONCURRENT_WINDOW_MS && rule.calendarMonth !== true;

export const keySeries = (keyId: string) => ({
  requests: `key:${keyId}:requests`,
  tokens: `key:${keyId}:tokens`,
  usd: `key:${keyId}:usd`,
  concurrent: `key:${keyId}:concurrent`,
});

/** The global rules the configuration enables: request windows, calls in flight. */
export function globalRules(config: Pick<Config, 'hourlyRateLimit' | 'dailyRateLimit'> & Partial<Pick<Config, 'maxConcurrent'>>): LimitRule[] {
  const rules: LimitRule[] = [];
  if (config.maxConcurrent !== undefined && config.maxConcurrent !== null) {
    rules.push({ name: 'concurrent', series: GLOBAL_CONCURRENT, unit: 'requests', windowMs: CONCURRENT_WINDOW_MS, limit: config.maxConcurrent });
  }
  if (config.hourlyRateLimit !== null) {
    rules.push({ name: 'hourly', series: GLOBAL_REQUESTS, unit: 'requests', windowMs: HOUR_MS, limit: config.hourlyRateLimit });
  }
  if (config.dailyRateLimit !== null) {
    rules.push({ name: 'daily', series: GLOBAL_REQUESTS, unit: 'requests', windowMs: DAY_MS, limit: config.dailyRateLimit });
  }
  return rules;
}

/** US dollars to the limiter's integer unit, micro-dollars. */
export const toMicroUsd = (usd: number): number => Math.round(usd * 1e6);

/** A stored key's own rules. Names are stable: they appear in /ratelimit and 429 messages. */
export function keyRules(keyId: string, policy: KeyPolicy): LimitRule[] {
  const s = keySeries(keyId);
  const rules: LimitRule[] = [];
  const add = (value: number | null | undefined, rule: Omit<LimitRule, 'limit'>, scale = (v: number) => v) => {
    if (value !== null && value !== undefined) rules.push({ ...rule, limit: scale(value) });
  };
  add(policy.requestsPerHour, { name: 'key_requests_per_hour', series: s.requests, unit: 'requests', windowMs: HOUR_MS });
  add(policy.requestsPerDay, { name: 'key_requests_per_day', series: s.requests, unit: 'requests', windowMs: DAY_MS });
  add(policy.tokensPerHour, { name: 'key_tokens_per_hour', series: s.tokens, unit: 'tokens', windowMs: HOUR_MS });
  add(policy.tokensPerDay, { name: 'key_tokens_per_day', series: s.tokens, unit: 'tokens', windowMs: DAY_MS });
  add(policy.usdPerDay, { name: 'key_usd_per_day', series: s.usd, unit: 'usd', windowMs: DAY_MS }, toMicroUsd);
  add(policy.usdPerMonth, { name: 'key_usd_per_month', series: s.usd, unit: 'usd', windowMs: MONTH_MS, calendarMonth: true }, toMicroUsd);
  add(policy.maxConcurrent, { name: 'key_concurrent', series: s.concurrent, unit: 'requests', windowMs: CONCURRENT_WINDOW_MS });
  return rules;
}

/** Whether a key has token or spend limits (then its calls are estimated, capped and settled). */
export function hasUsageLimits(policy: KeyPolicy): boolean {
  return [policy.tokensPerHour, policy.tokensPerDay, policy.usdPerDay, policy.usdPerMonth].some((v) => v !== null && v !== undefined);
}

/** How long the limiter must keep a series' events: its longest window (months for spend). */
export function horizonOf(series: string, longestRequestWindowMs: number): number {
  if (series.endsWith(':usd')) return MONTH_MS + DAY_MS;
  return Math.max(DAY_MS, longestRequestWindowMs);
}
