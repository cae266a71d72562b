/**
 * The primary's end of the cluster leases (cluster-leases.ts says what a lease is and why): one
 * book per limiter, over all workers. It grants a lease only while every rule keeps ample room,
 * counts what each worker reports, calls leases back before it refuses a call they stand in the
 * way of, withdraws one whose grant has not left yet, and counts what a dead worker's leases held.
 */
import type { Decision, LimitRule, Reservation, SeriesCost } from '../contract.js';
import { AMPLE_LEASES, isEmpty, leasable, RECALL_WAIT_MS, type LeaseDraw, type LeaseGrant } from './cluster-leases.js';

type Amounts = Record<string, number>;

/** What the primary's limiter must offer for leases (the MemoryLimiter does). */
export interface LeasingLimiter {
  reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision>;
  release(reservation: Reservation): Promise<void>;
  /** Counts `appended` at `at` and takes `released` off reservation `id`'s holds. */
  draw(id: string, appended: Readonly<Amounts>, released: Readonly<Amounts>, at: number): void;
  /** Ends reservation `id`'s holds: counted as used (`count`), or dropped. */
  endHold(id: string, count: boolean): void;
}

export const canLease = (limiter: object): limiter is LeasingLimiter => typeof (limiter as Partial<LeasingLimiter>).draw === 'function' && typeof (limiter as Partial<LeasingLimiter>).endHold === 'function';

interface PrimaryLease {
  owner: object;
  series: Set<string>;
  /** Resolved by the next report on it (or when its owner is gone). */
  reported: (() => void)[];
  /** Its grant has left for its worker (deliver); until then no call can have drawn on it. */
  delivered: boolean;
}

/** The primary's leases, over all workers (one book per limiter). */
export class LeaseBook {
  private readonly leases = new Map<string, PrimaryLease>();

  constructor(private readonly limiter: LeasingLimiter) {}

  /** Reserves a lease of `calls` calls costing `costs` each, if every rule keeps ample room. */
  async grant(owner: object, rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>, calls: number): Promise<LeaseGrant | null> {
    if (!leasable(rules)) return null;
    const leased: Record<string, SeriesCost> = {};
    for (const [series, cost] of Object.entries(costs)) if (cost.amount > 0) leased[series] = { amount: cost.amount * calls, hold: true };
    if (isEmpty(leased) || !Object.values(leased).every((c) => Number.isSafeInteger(c.amount))) return null;
    const decision = await this.limiter.reserve(rules, leased);
    const reservation = decision.reservation;
    if (!decision.admitted || reservation === undefined || reservation.id === '') return null;
    const ample = rules.every((rule, i) => (leased[rule.series]?.amount ?? 0) * AMPLE_LEASES <= decision.states[i]!.remaining);
    if (!ample) {
      await this.limiter.release(reservation);
      return null;
    }
    this.leases.set(reservation.id, { owner, series: new Set(Object.keys(leased)), reported: [], delivered: false });
    return { leaseId: reservation.id, credit: { ...reservation.held }, states: decision.states };
  }

  /**
   * A grant is about to leave in its worker's answer: the grant, or null when it was withdrawn
   * while the answer waited for the rest of its batch (see reserve).
   */
  deliver(grant: LeaseGrant | null): LeaseGrant | null {
    const lease = grant === null ? undefined : this.leases.get(grant.leaseId);
    if (lease === undefined) return null;
    lease.delivered = true;
    return grant;
  }

  /** A worker's report; reports on leases not in the book (an owner gone) are ignored. */
  draw(owner: object, draw: LeaseDraw): void {
    const lease = this.leases.get(draw.leaseId);
    if (lease === undefined || lease.owner !== owner) return;
    this.limiter.draw(draw.leaseId, draw.appended, draw.released, draw.at);
    if (draw.done) {
      this.limiter.endHold(draw.leaseId, false);
      this.leases.delete(draw.leaseId);
    }
    for (const wake of lease.reported.splice(0)) wake();
  }

  /** The worker is gone: what its leases still held counts as used (none of a grant it never got). */
  ownerGone(owner: object): void {
    for (const [id, lease] of this.leases) {
      if (lease.owner !== owner) continue;
      this.limiter.endHold(id, lease.delivered);
      this.leases.delete(id);
      for (const wake of lease.reported.splice(0)) wake();
    }
  }

  /**
   * Reserves; when that is refused while leases are out on a series that had too little room,
   * calls them back (`recall` tells each owner which: it gives them back and reports on each),
   * waits for those reports (at most RECALL_WAIT_MS), and decides again. A lease whose grant has
   * not left yet (its answer waits for the rest of its batch, this very call perhaps) cannot be
   * called back, nor has any call drawn on it: it is withdrawn at once (its worker gets no lease).
   */
  async reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>, recall: (owner: object, leaseIds: string[]) => void): Promise<Decision> {
    const decision = await this.limiter.reserve(rules, costs);
    // A call no lease stands in the way of: admitted, or too large for the limit itself.
    if (decision.admitted || decision.retryAfterMs === undefined) return decision;
    // Only leases on a series that refused: a key at its own limit calls back none on the global ones.
    const series = new Set(rules.filter((rule, i) => (costs[rule.series]?.amount ?? 0) > (decision.states[i]?.remaining ?? 0)).map((rule) => rule.series));
    const out = new Map<object, string[]>();
    const waits: Promise<void>[] = [];
    let withdrawn = false;
    for (const [id, lease] of this.leases) {
      if (![...lease.series].some((s) => series.has(s))) continue;
      if (!lease.delivered) {
        this.limiter.endHold(id, false);
        this.leases.delete(id);
        withdrawn = true;
        continue;
      }
      out.set(lease.owner, [...(out.get(lease.owner) ?? []), id]);
      waits.push(new Promise((resolve) => lease.reported.push(resolve)));
    }
    if (waits.length === 0 && !withdrawn) return decision;
    for (const [owner, ids] of out) recall(owner, ids);
    if (waits.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(waits), new Promise((resolve) => (timer = setTimeout(resolve, RECALL_WAIT_MS)))]);
      clearTimeout(timer);
    }
    return this.limiter.reserve(rules, costs);
  }
}
