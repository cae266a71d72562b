/**
 * Limits: the model, and the helpers every limiter shares (month bounds, reset durations, the
 * tightest state). The Limiter contract itself (its types) lives in src/contract.ts and is
 * re-exported here for code written against this path. Implementations sit side by side and pass
 * one contract test suite: memory.ts (one process decides, journaled to SQLite), cluster.ts
 * (cluster workers ask their primary's memory limiter, or spend a lease of its room), sqlite.ts
 * (every process decides in a transaction), redis.ts (every instance decides in one Lua script,
 * for several machines; behind fail-mode.ts). create.ts builds the configured one.
 * Everything is asynchronous even where an implementation could answer synchronously.
 *
 * Model: every limited quantity is a *series* (all requests through the gateway, one key's tokens,
 * one key's spend in micro-dollars). A rule caps the sum of a series over a window: a rolling one
 * (`windowMs`, e.g. the last 3600 s) or the current calendar month (UTC). Several rules can share a
 * series (hourly and daily requests): one event counts toward both. A rule with a window of no
 * length counts only what calls in flight hold: a concurrency cap (rules.ts). A hold that expires
 * before its call settles stops counting, but is remembered for a late commit (the constants
 * below; expired-holds.ts for the memory limiter).
 */

export type { Decision, Limiter, LimitRule, LimitUnit, Reservation, RuleState, SeriesCost } from '../contract.js';
import type { LimitUnit, RuleState } from '../contract.js';

export type Clock = () => number;

/**
 * How long a limiter remembers a reservation whose hold expired before it was settled (a stream
 * that outlived the hold's lifetime), counted from the hold's expiry: a `commit` within this long
 * still counts what the call used; after it, the reservation is forgotten and counts nothing.
 */
export const EXPIRED_HOLD_MEMORY_MS = 86_400_000;
/** At most this many expired holds are remembered per series; past it the oldest-expired are forgotten first. */
export const EXPIRED_HOLDS_KEPT = 10_000;
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
