/**
 * The Limiter contract: exact rolling-window limits where checking and reserving are one atomic
 * step. Implementations (SQLite now; Redis for several instances) sit side by side and pass one
 * contract test suite. Everything is asynchronous even where SQLite could answer synchronously.
 *
 * Model: every limited quantity is a *series* (for example all requests through the gateway).
 * A rule caps the sum of a series over a rolling window (`windowMs`). Several rules can share a
 * series (hourly and daily requests): one event counts toward both.
 */

export interface LimitRule {
  /** Stable name shown to users, e.g. `hourly`. */
  name: string;
  series: string;
  windowMs: number;
  limit: number;
}

export interface RuleState {
  name: string;
  limit: number;
  /** Counted plus held (in flight) in the current window, including this request when admitted. */
  used: number;
  remaining: number;
  windowMs: number;
  /** Milliseconds until the oldest counted event leaves the window (0 when the window is empty). */
  resetMs: number;
}

export interface Reservation {
  id: string;
  series: string[];
  cost: number;
  /** True when the cost is held in flight and must be committed or released. */
  held: boolean;
}

export interface Decision {
  admitted: boolean;
  states: RuleState[];
  /** When refused: the rule that refused and the exact wait until this request would fit. */
  blockedBy?: string;
  retryAfterMs?: number;
  reservation?: Reservation;
}

export interface ReserveOptions {
  /** Amount to add to every rule's series (1 for a request). */
  cost: number;
  /**
   * false: count the cost at once (the original's "every admitted call counts").
   * true: hold it in flight; `commit` counts it, `release` drops it (count-only-2xx mode).
   */
  hold: boolean;
}

export interface Limiter {
  /** Atomically checks every rule and, only if all have room, reserves `cost` in each series. */
  reserve(rules: readonly LimitRule[], options: ReserveOptions): Promise<Decision>;
  /** Turns a held reservation into counted events at the current time. No-op for unheld ones. */
  commit(reservation: Reservation): Promise<void>;
  /** Drops a held reservation. No-op for unheld ones. */
  release(reservation: Reservation): Promise<void>;
  /** Current state of each rule, reserving nothing. */
  peek(rules: readonly LimitRule[]): Promise<RuleState[]>;
  /** Deletes events older than `horizonMs` and expired holds; returns the number of rows removed. */
  prune(horizonMs: number): Promise<number>;
  close(): Promise<void>;
}

export type Clock = () => number;
export const systemClock: Clock = () => Date.now();

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

/** The most constraining state: the one with the least remaining room. */
export function tightest(states: readonly RuleState[]): RuleState | undefined {
  let best: RuleState | undefined;
  for (const s of states) if (best === undefined || s.remaining < best.remaining) best = s;
  return best;
}
