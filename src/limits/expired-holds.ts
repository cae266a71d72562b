/**
 * The memory limiter's record of holds that expired before their calls settled (a stream that
 * outlived the hold's lifetime): per series, by reservation id, what the hold held and when it
 * expired, so that a late commit still counts what the call used (see Limiter.commit in
 * src/contract.ts). Bounded: a hold is forgotten EXPIRED_HOLD_MEMORY_MS after its expiry, and past
 * EXPIRED_HOLDS_KEPT per series the oldest swept go first.
 */
import type { Reservation } from '../contract.js';
import { EXPIRED_HOLD_MEMORY_MS, EXPIRED_HOLDS_KEPT } from './limiter.js';

/** What a hold that expired unsettled held in one series, and when it expired. */
interface ExpiredHold {
  amount: number;
  expiredAt: number;
}

export class ExpiredHolds {
  /** Per series, in the order the holds were swept (oldest expiry first). */
  private readonly bySeries = new Map<string, Map<string, ExpiredHold>>();

  /** Remembers the holds of reservation `id` (amounts by series) that expired at `expiredAt`. */
  remember(id: string, amounts: Readonly<Record<string, number>>, expiredAt: number): void {
    for (const [series, amount] of Object.entries(amounts)) {
      let holds = this.bySeries.get(series);
      if (holds === undefined) this.bySeries.set(series, (holds = new Map()));
      holds.set(id, { amount, expiredAt });
      if (holds.size > EXPIRED_HOLDS_KEPT) holds.delete(holds.keys().next().value!);
    }
  }

  /**
   * Takes (forgets) a reservation's remembered holds in the series it names, and returns the
   * amounts of those that expired less than EXPIRED_HOLD_MEMORY_MS before `now`.
   */
  take(reservation: Reservation, now: number): Record<string, number> {
    const amounts: Record<string, number> = {};
    for (const series of Object.keys(reservation.held)) {
      const holds = this.bySeries.get(series);
      const hold = holds?.get(reservation.id);
      if (hold === undefined) continue;
      holds!.delete(reservation.id);
      if (holds!.size === 0) this.bySeries.delete(series);
      if (hold.expiredAt > now - EXPIRED_HOLD_MEMORY_MS) amounts[series] = hold.amount;
    }
    return amounts;
  }

  /** Forgets the holds remembered for EXPIRED_HOLD_MEMORY_MS already. */
  forget(now: number): void {
    for (const [series, holds] of this.bySeries) {
      for (const [id, hold] of holds) {
        if (hold.expiredAt > now - EXPIRED_HOLD_MEMORY_MS) break;
        holds.delete(id);
      }
      if (holds.size === 0) this.bySeries.delete(series);
    }
  }
}
