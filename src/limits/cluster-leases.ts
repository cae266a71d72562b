/**
 * Leases for cluster workers (PROXYGPT_WORKERS > 1), so that a busy worker need not ask the
 * primary for every call. While every rule of a caller has ample room, the primary reserves a
 * block of it for one worker at once (a *lease*: room for LEASE_CALLS calls like the one that
 * asked, held in its limiter like any call in flight); the worker admits its next calls from that
 * block by itself and tells the primary, a few milliseconds later, what they counted. So:
 * - nothing is ever admitted past a limit: a lease is held before any call spends it, and what a
 *   call counts beyond its share (tokens over the estimate) is counted all the same; the room a
 *   call held comes off the lease when it settles (what it did not use goes back to everyone, not
 *   to the lease), so the primary's hold is always exactly the lease's unspent room plus what its
 *   calls in flight hold, once reported;
 * - nobody is refused while room is left: a lease is granted only while each rule would still
 *   have room for AMPLE_LEASES more after it, and before the primary refuses a call it calls back
 *   every lease on a series that had too little room (unspent room comes back, and what their
 *   calls settled is reported) and decides again;
 * - events are counted late, never early: a report counts its events at the time of the newest
 *   one in it (at most REPORT_MS late for the others), so they stay in their windows a little
 *   longer than they happened, never shorter;
 * - a lease lives at most LEASE_MS: the worker then gives back what is left, busy or idle;
 * - a worker that dies with a lease counts all of it that was still held (the safe side: what its
 *   calls had used since their last report is not known);
 * - the rate-limit headers of a call admitted from a lease are those of the lease's grant with
 *   this worker's spending since (at most LEASE_MS old): other workers' calls meanwhile and room
 *   freed since are not in them, and another worker's unspent lease counts as used.
 * This module holds what both ends share and the worker's end, WorkerLeases (in ClusterLimiter);
 * the primary's end is LeaseBook (lease-book.ts).
 */
import type { Decision, LimitRule, Reservation, RuleState, SeriesCost } from '../contract.js';
import { isConcurrencyRule } from './rules.js';

/** A lease has room for this many calls costing what the call that asked for it did. */
export const LEASE_CALLS = 128;
/** Granted only while every rule keeps room for this many more leases beyond it. */
export const AMPLE_LEASES = 4;
/** A worker spends a lease within this long, then gives back what is left (and asks again). */
export const LEASE_MS = 250;
/** What calls admitted from a lease counted is reported to the primary within this long. */
export const REPORT_MS = 25;
/** After a lease was refused (not ample room), the worker asks per call for this long. */
export const LEASE_BACKOFF_MS = 1000;
/** How long the primary waits for leases it called back before it decides anyway. */
export const RECALL_WAIT_MS = 1000;

type Amounts = Record<string, number>;

/** What the primary answers to a lease request: null when it grants none. */
export interface LeaseGrant {
  leaseId: string;
  /** Room per series, held for this worker. */
  credit: Amounts;
  /** The rules' states once the lease was held (in the order of the rules). */
  states: RuleState[];
}

/** A worker's report on one lease: counted now (`appended`, at `at`), off the lease's hold (`released`). */
export interface LeaseDraw {
  leaseId: string;
  appended: Amounts;
  released: Amounts;
  at: number;
  /** The worker is done with the lease: nothing of it is held any more. */
  done: boolean;
}

/** Whether a rule set can be leased: calls-in-flight caps count holds only, they are never leased. */
export const leasable = (rules: readonly LimitRule[]): boolean => rules.length > 0 && !rules.some(isConcurrencyRule);

const add = (into: Amounts, series: string, amount: number) => {
  if (amount > 0) into[series] = (into[series] ?? 0) + amount;
};
export const isEmpty = (amounts: object) => Object.keys(amounts).length === 0;

interface WorkerLease {
  id: string;
  rules: readonly LimitRule[];
  states: RuleState[];
  grantedAt: number;
  open: boolean;
  /** Unspent room per series. */
  credit: Amounts;
  /** The room granted, per series. */
  granted: Amounts;
  /** Counted by calls, not yet reported. */
  unreported: Amounts;
  /** Room that came off the lease (spent by a call that settled or counts at once, or given back), not yet reported. */
  unheld: Amounts;
  /** The primary asked for a report (a recall): send one even if there is nothing in it. */
  mustReport: boolean;
  /** Time of the newest event in `unreported`. */
  newestAt: number;
  /** Holds of this lease's calls in flight, by reservation id. */
  inFlight: Map<string, Amounts>;
}

/** A worker's leases (one per rule set at most), its calls admitted from them, and its reports. */
export class WorkerLeases {
  private readonly byRules = new Map<number, WorkerLease>();
  /** Every lease not done with yet (open, or given back with calls in flight or a report due). */
  private readonly byId = new Map<string, WorkerLease>();
  private readonly byCall = new Map<string, WorkerLease>();
  private readonly reporting = new Set<WorkerLease>();
  private readonly asking = new Set<number>();
  private readonly backoffUntil = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  /** Gives back leases LEASE_MS old that no call replaced (see expire). */
  private expiry: NodeJS.Timeout | null = null;
  private calls = 0;
  /** Rule set numbers mean other sets after each forgetRuleSets(): grants asked for before are given back. */
  private epoch = 0;

  constructor(
    private readonly clock: () => number,
    /** Sends reports to the primary (no answer is awaited). */
    private readonly send: (draws: LeaseDraw[]) => void,
  ) {}

  /** Admits a call from the rule set's lease, or returns null (no usable lease: ask the primary). */
  admit(rulesId: number, costs: Readonly<Record<string, SeriesCost>>): Decision | null {
    const lease = this.byRules.get(rulesId);
    if (lease === undefined) return null;
    const now = this.clock();
    const fits = now - lease.grantedAt < LEASE_MS && now >= lease.grantedAt && Object.entries(costs).every(([series, cost]) => cost.amount <= 0 || (lease.credit[series] ?? -1) >= cost.amount);
    if (!fits) {
      this.giveBack(lease);
      return null;
    }
    const held: Amounts = {};
    for (const [series, cost] of Object.entries(costs)) {
      if (cost.amount <= 0) continue;
      lease.credit[series]! -= cost.amount;
      if (cost.hold) {
        held[series] = cost.amount;
      } else {
        this.count(lease, series, cost.amount, now);
        add(lease.unheld, series, cost.amount);
      }
    }
    const reservation: Reservation = { id: isEmpty(held) ? '' : `${lease.id}.${++this.calls}`, held };
    if (reservation.id !== '') {
      lease.inFlight.set(reservation.id, { ...held });
      this.byCall.set(reservation.id, lease);
    }
    this.schedule(lease);
    return { admitted: true, states: this.statesOf(lease, now), reservation };
  }

  /** The lease's states as granted, with this worker's spending since. */
  private statesOf(lease: WorkerLease, now: number): RuleState[] {
    return lease.states.map((state, i) => {
      const credit = lease.credit[lease.rules[i]!.series] ?? 0;
      const remaining = Math.max(0, Math.min(state.limit, state.remaining + credit));
      return { ...state, used: state.limit - remaining, remaining, resetMs: state.resetMs === 0 ? 0 : Math.max(0, state.resetMs - (now - lease.grantedAt)) };
    });
  }

  /**
   * Whether to ask the primary for a lease on this rule set along with this call: when there is
   * none, or the one there is has half its time or of its room in some series spent (the next one
   * then arrives before this one runs out).
   */
  shouldAsk(rulesId: number): boolean {
    if (this.asking.has(rulesId)) return false;
    const now = this.clock();
    const lease = this.byRules.get(rulesId);
    if (lease !== undefined && now - lease.grantedAt < LEASE_MS / 2 && Object.entries(lease.granted).every(([s, amount]) => lease.credit[s]! * 2 >= amount)) return false;
    return (this.backoffUntil.get(rulesId) ?? -Infinity) <= now;
  }

  /** A lease is being asked for: returns the number to hand `granted` with the answer. */
  asked(rulesId: number): number {
    this.asking.add(rulesId);
    return this.epoch;
  }

  /** The worker numbers its rule sets anew: every lease is given back, asks in flight are void. */
  forgetRuleSets(): void {
    this.epoch++;
    this.asking.clear();
    this.backoffUntil.clear();
    this.close();
  }

  /** The primary's answer to a lease request (`epoch`: what `asked` returned). */
  granted(rulesId: number, rules: readonly LimitRule[], grant: LeaseGrant | null | undefined, epoch: number): void {
    if (epoch !== this.epoch) {
      // Asked for under numbers that mean other rule sets now: given back unspent at once.
      if (grant != null) {
        const stale = this.leaseOf(rules, grant);
        this.byId.set(stale.id, stale);
        this.giveBack(stale);
      }
      return;
    }
    this.asking.delete(rulesId);
    if (grant == null) {
      this.backoffUntil.set(rulesId, this.clock() + LEASE_BACKOFF_MS);
      return;
    }
    const lease = this.leaseOf(rules, grant);
    this.byId.set(lease.id, lease);
    const before = this.byRules.get(rulesId);
    if (before !== undefined) {
      // The grant counted what the lease it replaces had left as used: that comes back now.
      lease.states = lease.states.map((state, i) => {
        const back = Math.max(0, before.credit[rules[i]!.series] ?? 0);
        return back === 0 ? state : { ...state, remaining: Math.min(state.limit, state.remaining + back), used: Math.max(0, state.used - back) };
      });
      this.giveBack(before);
    }
    this.byRules.set(rulesId, lease);
    this.armExpiry();
  }

  /**
   * A lease that no call spent for LEASE_MS (an idle worker's, or one of a rule set no longer
   * used: a key's limits changed) is given back then, so the primary holds its room no longer
   * than LEASE_MS + REPORT_MS, rather than until a refusal calls it back.
   */
  private expire(): void {
    this.expiry = null;
    const now = this.clock();
    for (const lease of [...this.byRules.values()]) if (now - lease.grantedAt >= LEASE_MS) this.giveBack(lease);
    this.armExpiry();
  }

  private armExpiry(): void {
    if (this.expiry !== null || this.byRules.size === 0) return;
    let first = Infinity;
    for (const lease of this.byRules.values()) first = Math.min(first, lease.grantedAt + LEASE_MS);
    this.expiry = setTimeout(() => this.expire(), Math.max(1, first - this.clock()));
    this.expiry.unref();
  }

  private leaseOf(rules: readonly LimitRule[], grant: LeaseGrant): WorkerLease {
    return {
      id: grant.leaseId,
      rules,
      states: grant.states,
      grantedAt: this.clock(),
      open: true,
      credit: { ...grant.credit },
      granted: { ...grant.credit },
      unreported: {},
      unheld: {},
      mustReport: false,
      newestAt: 0,
      inFlight: new Map(),
    };
  }

  /** Settles a call admitted from a lease; false when the reservation is not one of them. */
  commit(reservation: Reservation, actual: Readonly<Record<string, number>>): boolean {
    const lease = this.byCall.get(reservation.id);
    if (lease === undefined) return false;
    const held = this.takeCall(lease, reservation.id);
    const now = this.clock();
    for (const [series, amount] of Object.entries(held)) {
      this.count(lease, series, actual[series] ?? amount, now);
      add(lease.unheld, series, amount);
    }
    this.schedule(lease);
    return true;
  }

  /** Drops a call admitted from a lease without counting it; false when it is not one of them. */
  release(reservation: Reservation): boolean {
    const lease = this.byCall.get(reservation.id);
    if (lease === undefined) return false;
    for (const [series, amount] of Object.entries(this.takeCall(lease, reservation.id))) add(lease.unheld, series, amount);
    this.schedule(lease);
    return true;
  }

  /**
   * The primary calls these leases back (it would otherwise refuse a call): give them back and
   * report on each at once, also on one given back before (its calls may have settled since).
   */
  recall(leaseIds: readonly string[]): void {
    for (const id of leaseIds) {
      const lease = this.byId.get(id);
      if (lease === undefined) continue;
      this.giveBack(lease);
      lease.mustReport = true;
      this.reporting.add(lease);
    }
    this.report();
  }

  /** Gives back every lease and reports at once (the worker is closing). */
  close(): void {
    for (const lease of [...this.byRules.values()]) this.giveBack(lease);
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.expiry = null;
    this.report();
  }

  private takeCall(lease: WorkerLease, id: string): Amounts {
    const held = lease.inFlight.get(id) ?? {};
    lease.inFlight.delete(id);
    this.byCall.delete(id);
    return held;
  }

  private count(lease: WorkerLease, series: string, amount: number, now: number): void {
    if (amount <= 0) return;
    add(lease.unreported, series, amount);
    lease.newestAt = Math.max(lease.newestAt, now);
  }

  private giveBack(lease: WorkerLease): void {
    if (!lease.open) return;
    lease.open = false;
    for (const [series, amount] of Object.entries(lease.credit)) add(lease.unheld, series, amount);
    lease.credit = {};
    for (const [rulesId, l] of this.byRules) if (l === lease) this.byRules.delete(rulesId);
    this.schedule(lease);
  }

  private schedule(lease: WorkerLease): void {
    this.reporting.add(lease);
    if (this.timer === null) {
      this.timer = setTimeout(() => this.report(), REPORT_MS);
      this.timer.unref();
    }
  }

  /** Reports every lease with something to report, in one message. */
  report(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const draws: LeaseDraw[] = [];
    for (const lease of this.reporting) {
      const done = !lease.open && lease.inFlight.size === 0;
      if (isEmpty(lease.unreported) && isEmpty(lease.unheld) && !done && !lease.mustReport) continue;
      draws.push({ leaseId: lease.id, appended: lease.unreported, released: lease.unheld, at: lease.newestAt, done });
      lease.mustReport = false;
      lease.unreported = {};
      lease.unheld = {};
      if (done) this.byId.delete(lease.id);
    }
    this.reporting.clear();
    if (draws.length > 0) this.send(draws);
  }
}
