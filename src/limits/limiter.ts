/**
 * The Limiter contract: exact windowed limits where checking and reserving are one atomic step.
 * Implementations sit side by side and pass one contract test suite: memory.ts (one process
 * decides, journaled to SQLite), cluster.ts (cluster workers ask their primary's memory limiter),
 * sqlite.ts (every process decides in a transaction); Redis for several machines is to come.
 * Everything is asynchronous even where an implementation could answer synchronously.
 *
 * Model: every limited quantity is a *series* (all requests through the gateway, one key's tokens,
 * one key's spend in micro-dollars). A rule caps the sum of a series over a window: a rolling one
 * (`windowMs`, e.g. the last 3600 s) or the current calendar month (UTC). Several rules can share a
 * series (hourly and daily requests): one event counts toward both.
 */

export type LimitUnit = 'requests' | 'tokens' | 'usd';

export interface LimitRule {
  /** Stable name shown to users, e.g. `hourly` or `key_tokens_per_day`. */
  name: string;
  series: string;
  unit: LimitUnit;
  /** Rolling window length; for calendar-month rules, the month's length (informational). */
  windowMs: number;
  /** true: the window is the current calendar month (UTC) instead of a rolling one. */
  calendarMonth?: boolean;
  limit: number;
}

export interface RuleState {
  name: string;
  unit: LimitUnit;
  limit: number;
  /** Counted plus held (in flight) in the current window, including this request when admitted. */
  used: number;
  remaining: number;
  windowMs: number;
  /**
   * Milliseconds until room grows again: for rolling windows until the oldest counted event leaves;
   * for calendar months until the month ends. 0 when nothing is counted.
   */
  resetMs: number;
}

/** What one request costs in one series, and whether the amount is held (settled later). */
export interface SeriesCost {
  amount: number;
  /**
   * false: counted at once (the original's "every admitted call counts").
   * true: held in flight; `commit` counts the actual amount at commit time, `release` drops it.
   */
  hold: boolean;
}

export interface Reservation {
  id: string;
  /** Held amounts by series, to settle with `commit` or `release`. */
  held: Record<string, number>;
}

export interface Decision {
  admitted: boolean;
  states: RuleState[];
  /** When refused: the rule that refused and the exact wait until this request would fit. */
  blockedBy?: string;
  /** undefined when refused and no amount of waiting helps (the cost exceeds the limit). */
  retryAfterMs?: number;
  reservation?: Reservation;
}

export interface Limiter {
  /**
   * Atomically checks every rule against the cost of its series and, only if all have room,
   * reserves every cost. Series named in `costs` without a rule are reserved too.
   */
  reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision>;
  /**
   * Settles held amounts: each held series counts `actual[series]` (default: the held amount) at
   * the current time. Counted-at-admission series are untouched. Idempotent.
   */
  commit(reservation: Reservation, actual?: Readonly<Record<string, number>>): Promise<void>;
  /** Drops held amounts. Idempotent. */
  release(reservation: Reservation): Promise<void>;
  /** Current state of each rule, reserving nothing. */
  peek(rules: readonly LimitRule[]): Promise<RuleState[]>;
  /**
   * Deletes events no window can see any more (older than `horizonMs(series)`) and expired holds;
   * returns the number of rows removed.
   */
  prune(horizonMs: (series: string) => number): Promise<number>;
  close(): Promise<void>;
}

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

/** Start of the calendar month (UTC) containing `now`, and of the next one. */
export function monthBounds(now: number): { start: number; end: number } {
  const d = new Date(now);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

/** OpenAI's duration format for x-ratelimit-reset-*: `1s`, `6m0s`, `1h2m3s`, `250ms`. */
export function formatResetDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** The most constraining state of a unit: the one with the least remaining room. */
export function tightest(states: readonly RuleState[], unit?: LimitUnit): RuleState | undefined {
  let best: RuleState | undefined;
  for (const s of states) {
    if (unit !== undefined && s.unit !== unit) continue;
    if (best === undefined || s.remaining < best.remaining) best = s;
  }
  return best;
}
