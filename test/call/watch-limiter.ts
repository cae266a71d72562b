/**
 * Watches what a test gateway's limiter and recorder do (reservations made and refused, commits,
 * releases, usage records), for tests that must show a request was counted exactly once, or not at
 * all: a request refused before admission reserves nothing and is not recorded; an admitted one is
 * committed once and recorded once.
 */
import { vi } from 'vitest';
import type { Reservation } from '../../src/limits/limiter.js';
import type { UsageRecord } from '../../src/contract.js';
import type { TestGateway } from '../helpers.js';

export interface LimiterWatch {
  /** Reservation ids of admitted calls. */
  reserved: string[];
  refused: number;
  committed: string[];
  /** The actual amounts each commit counted, by reservation id. */
  actuals: Map<string, Record<string, number>>;
  released: string[];
  records: UsageRecord[];
  /** Makes the next `n` commits reject (after they were seen), as a limiter that fails would. */
  failCommits(n: number): void;
  /** Awaited before the next reservation is made (then cleared): holds a call at admission. */
  gate: (() => Promise<void>) | null;
  reset(): void;
}

/** Spies on `gw`'s limiter and recorder (the real ones still run); vi.restoreAllMocks() undoes it. */
export function watchLimiter(gw: TestGateway): LimiterWatch {
  let failing = 0;
  const seen: LimiterWatch = {
    reserved: [],
    refused: 0,
    committed: [],
    actuals: new Map(),
    released: [],
    records: [],
    gate: null,
    failCommits(n) {
      failing = n;
    },
    reset() {
      for (const list of [this.reserved, this.committed, this.released, this.records]) list.length = 0;
      this.actuals.clear();
      this.refused = 0;
      failing = 0;
    },
  };
  const { limiter, recorder } = gw.app;
  const reserve = limiter.reserve.bind(limiter);
  vi.spyOn(limiter, 'reserve').mockImplementation(async (rules, costs) => {
    const gate = seen.gate;
    seen.gate = null;
    if (gate !== null) await gate();
    const decision = await reserve(rules, costs);
    if (decision.admitted) seen.reserved.push(decision.reservation!.id);
    else seen.refused++;
    return decision;
  });
  const commit = limiter.commit.bind(limiter);
  vi.spyOn(limiter, 'commit').mockImplementation(async (reservation: Reservation, actual) => {
    seen.committed.push(reservation.id);
    seen.actuals.set(reservation.id, { ...actual });
    if (failing > 0) {
      failing--;
      throw new Error('the limiter could not commit');
    }
    return commit(reservation, actual);
  });
  const release = limiter.release.bind(limiter);
  vi.spyOn(limiter, 'release').mockImplementation(async (reservation: Reservation) => {
    seen.released.push(reservation.id);
    return release(reservation);
  });
  const record = recorder.record.bind(recorder);
  vi.spyOn(recorder, 'record').mockImplementation((r: UsageRecord) => {
    seen.records.push(r);
    record(r);
  });
  return seen;
}
