/**
 * What the gateway does while its shared limiter (Redis) cannot be reached. `closed`, the default:
 * calls are refused with a 503 `limiter_unavailable`, so no limit can be overspent. `open`: calls
 * are served and counted on a limiter local to this instance meanwhile (exact for this instance
 * alone: several instances may together pass a limit by up to their number), and the outage is
 * logged loudly. Either way it recovers by itself: once the shared limiter answers again, it
 * decides again, without a restart.
 *
 * A call that was admitted by the shared limiter settles there (if it cannot be reached then, its
 * hold expires by itself); one admitted by the local limiter settles locally. While the shared
 * limiter is failing, it is tried again at most every `retryMs` (calls in between do not wait on
 * it), so an outage costs each call nothing beyond that probe.
 */
import { limiterUnavailable } from '../errors.js';
import type { Decision, LimitRule, Limiter, Reservation, RuleState, SeriesCost } from './limiter.js';

export type FailMode = 'closed' | 'open';

export interface FailModeOptions {
  /** The shared limiter. */
  shared: Limiter;
  mode: FailMode;
  /** Whether an error means "the shared limiter cannot be reached" (rather than a bug). */
  isUnavailable: (err: unknown) => boolean;
  /** For `open`: the limiter of this instance that counts while the shared one is down. */
  local?: Limiter;
  /** How long after a failure the shared limiter is left alone before it is tried again. */
  retryMs?: number;
  clock?: () => number;
  /** Told when the shared limiter fails (with the error) and when it answers again (null). */
  onChange?: (err: unknown | null) => void;
}

export class FailModeLimiter implements Limiter {
  private readonly local: Limiter | null;
  private readonly retryMs: number;
  private readonly clock: () => number;
  /** When the shared limiter may be tried again; 0 while it answers. */
  private downUntil = 0;
  private down = false;
  private readonly localReservations = new WeakSet<Reservation>();

  constructor(private readonly options: FailModeOptions) {
    if (options.mode === 'open' && options.local === undefined) throw new Error('fail-open needs a local limiter');
    this.local = options.mode === 'open' ? options.local! : null;
    this.retryMs = options.retryMs ?? 1_000;
    this.clock = options.clock ?? Date.now;
  }

  /** Whether the shared limiter is failing (as of the last call that tried it). */
  get sharedDown(): boolean {
    return this.down;
  }

  async reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision> {
    const decision = await this.either((limiter) => limiter.reserve(rules, costs));
    if (decision.limiter === this.local && decision.value.reservation !== undefined) this.localReservations.add(decision.value.reservation);
    return decision.value;
  }

  async peek(rules: readonly LimitRule[]): Promise<RuleState[]> {
    return (await this.either((limiter) => limiter.peek(rules))).value;
  }

  async commit(reservation: Reservation, actual?: Readonly<Record<string, number>>): Promise<void> {
    await this.settle(reservation, (limiter) => limiter.commit(reservation, actual));
  }

  async release(reservation: Reservation): Promise<void> {
    await this.settle(reservation, (limiter) => limiter.release(reservation));
  }

  async prune(horizonMs: (series: string) => number): Promise<number> {
    const local = this.local === null ? 0 : await this.local.prune(horizonMs);
    try {
      return local + (await this.options.shared.prune(horizonMs));
    } catch (err) {
      if (!this.options.isUnavailable(err)) throw err;
      return local;
    }
  }

  async close(): Promise<void> {
    await this.options.shared.close();
    await this.local?.close();
  }

  /** The shared limiter's answer; while it is down, the local one's (open) or a 503 (closed). */
  private async either<T>(run: (limiter: Limiter) => Promise<T>): Promise<{ value: T; limiter: Limiter }> {
    if (!this.down || this.clock() >= this.downUntil) {
      try {
        const value = await run(this.options.shared);
        this.markUp();
        return { value, limiter: this.options.shared };
      } catch (err) {
        if (!this.options.isUnavailable(err)) throw err;
        this.markDown(err);
      }
    }
    if (this.local === null) throw limiterUnavailable();
    return { value: await run(this.local), limiter: this.local };
  }

  /** Settles where the reservation was made. A shared one that cannot be reached expires by itself. */
  private async settle(reservation: Reservation, run: (limiter: Limiter) => Promise<void>): Promise<void> {
    if (this.localReservations.has(reservation)) return run(this.local!);
    try {
      await run(this.options.shared);
      this.markUp();
    } catch (err) {
      if (!this.options.isUnavailable(err)) throw err;
      this.markDown(err);
    }
  }

  private markDown(err: unknown): void {
    this.downUntil = this.clock() + this.retryMs;
    if (this.down) return;
    this.down = true;
    this.options.onChange?.(err);
  }

  private markUp(): void {
    if (!this.down) return;
    this.down = false;
    this.downUntil = 0;
    this.options.onChange?.(null);
  }
}
