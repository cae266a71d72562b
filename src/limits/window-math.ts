/**
 * The arithmetic every limiter shares, whatever stores its events: where a rule's window starts,
 * how full it is, whether a cost fits, the exact wait until it would, and the states an admitted
 * call reports. A limiter supplies only what it knows about a series (see `SeriesView`).
 */
import type { Decision, LimitRule, RuleState, SeriesCost } from '../contract.js';
import { monthBounds } from './limiter.js';

/** An event is outside a rule's window when its time is at or before `outside`. */
export interface WindowBounds {
  outside: number;
  /** When an event stamped `ts` leaves the window. */
  leavesAt: (ts: number) => number;
}

export function windowBounds(rule: LimitRule, now: number): WindowBounds {
  if (rule.calendarMonth) {
    const month = monthBounds(now);
    return { outside: month.start - 1, leavesAt: () => month.end };
  }
  return { outside: now - rule.windowMs, leavesAt: (ts) => ts + rule.windowMs };
}

/** What a limiter knows about one series at one window's edge. */
export interface SeriesView {
  /** Running total after the newest event. */
  cum: number;
  /** Amounts held by calls in flight. */
  held: number;
  /** Running total at the window's trailing edge (after the last event at or before `outside`). */
  edgeCum: number;
  /** Time of the oldest event inside the window; undefined when the window holds none. */
  oldestTs: number | undefined;
}

export interface Judgement {
  state: RuleState;
  fits: boolean;
  /** When it does not fit: the wait until it would; undefined when waiting cannot help. */
  retryAfterMs?: number;
  leavesAt: (ts: number) => number;
}

/**
 * Judges `cost` more against one rule. `firstTsAtCum(c)` is the time of the first event whose
 * running total reaches `c` (asked only when the cost does not fit).
 */
export function judgeRule(
  rule: LimitRule,
  now: number,
  bounds: WindowBounds,
  view: SeriesView,
  cost: number,
  firstTsAtCum: (cum: number) => number | undefined,
): Judgement {
  const used = view.cum - view.edgeCum + view.held;
  const state: RuleState = {
    name: rule.name,
    unit: rule.unit,
    limit: rule.limit,
    used,
    remaining: Math.max(0, rule.limit - used),
    windowMs: rule.windowMs,
    resetMs: view.oldestTs === undefined ? 0 : Math.max(0, bounds.leavesAt(view.oldestTs) - now),
  };
  const fits = used + cost <= rule.limit;
  let retryAfterMs: number | undefined;
  if (!fits && cost <= rule.limit) {
    // Enough has expired once the window's starting total reaches `needed`.
    const needed = view.cum + view.held + cost - rule.limit;
    if (needed <= view.cum) {
      const ts = firstTsAtCum(needed);
      if (ts !== undefined) retryAfterMs = Math.max(1, bounds.leavesAt(ts) - now);
    } else {
      retryAfterMs = 1000; // only in-flight holds are in the way: they end with their requests
    }
  }
  return { state, fits, retryAfterMs, leavesAt: bounds.leavesAt };
}

/**
 * The refusal when any judgement does not fit, or null to admit: the longest wait wins (the first
 * of equals); a rule the cost alone exceeds wins over any wait (no wait helps), and is named.
 */
export function refusal(rules: readonly LimitRule[], judgements: readonly Judgement[]): Decision | null {
  let blockedBy: string | undefined;
  let retryAfterMs: number | undefined;
  let never: string | undefined;
  judgements.forEach((j, i) => {
    if (j.fits) return;
    if (j.retryAfterMs === undefined) never ??= rules[i]!.name;
    if (blockedBy === undefined || (j.retryAfterMs ?? 0) > (retryAfterMs ?? 0)) {
      blockedBy = rules[i]!.name;
      retryAfterMs = j.retryAfterMs;
    }
  });
  if (blockedBy === undefined) return null;
  const states = judgements.map((j) => j.state);
  if (never !== undefined) return { admitted: false, states, blockedBy: never, retryAfterMs: undefined };
  return { admitted: false, states, blockedBy, retryAfterMs };
}

/**
 * The states an admitted call reports: its own amounts included, and in a window that was empty
 * the time its own amount leaves (stamped `now`, or the series' later last time).
 */
export function admittedStates(
  rules: readonly LimitRule[],
  costs: Readonly<Record<string, SeriesCost>>,
  judgements: readonly Judgement[],
  now: number,
  lastTsBefore: (series: string) => number,
): RuleState[] {
  return judgements.map((j, i) => {
    const state = j.state;
    const rule = rules[i]!;
    const cost = costs[rule.series];
    if (cost === undefined || cost.amount <= 0) return state;
    state.used += cost.amount;
    state.remaining = Math.max(0, state.limit - state.used);
    if (state.resetMs === 0) state.resetMs = j.leavesAt(Math.max(now, lastTsBefore(rule.series))) - now;
    return state;
  });
}

/** Rejects costs a limiter cannot count (negative, fractional, unsafe). */
export function checkAmounts(amounts: Iterable<number>, what: string): void {
  for (const amount of amounts) {
    if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError(`${what} must be non-negative integers`);
  }
}
