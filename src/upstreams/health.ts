/**
 * The health of one upstream key: its circuit breaker and its rate-limit cooldown, on the
 * gateway's clock (injected in tests). The breaker counts consecutive failures (no answer, a
 * 5xx, a 401); at the threshold it opens and the key gets no calls for the cooldown; then it is
 * half-open: one call (the probe) goes through, and its success closes the breaker, its failure
 * opens it for another cooldown. A 429 is no failure of the key but a wait: the key sits out the
 * upstream's Retry-After (capped) and is back by itself. Every attempt a key is picked for ends
 * in exactly one of succeeded / failed / rateLimited / abandoned, so a probe never stays taken.
 * Also kept for the admin API: counts and the last error (a status or an error code, never text
 * from the upstream).
 */
import type { BreakerSettings } from './spec.js';

export type KeyState = 'healthy' | 'open' | 'half_open' | 'cooling_down';

export interface KeyHealthView {
  state: KeyState;
  /** Until when the breaker is open, or the key sits out a 429 (epoch ms); null when neither. */
  until: number | null;
  consecutiveFailures: number;
  /** Attempts that got an answer the gateway kept (not failed over), and attempts that failed or were rate limited. */
  served: number;
  failed: number;
  lastError: { at: number; message: string } | null;
}

export class KeyHealth {
  private consecutive = 0;
  private open = false;
  private openUntil = 0;
  private probing = false;
  private coolUntil = 0;
  private served = 0;
  private failures = 0;
  private lastError: { at: number; message: string } | null = null;

  constructor(private readonly breaker: BreakerSettings) {}

  /** When the key can take a call (at or before `now`: it can now); Infinity while its probe is out. */
  availableAt(now: number): number {
    let at = this.coolUntil;
    if (this.open) at = Math.max(at, this.probing ? Infinity : this.openUntil);
    return at <= now ? now : at;
  }

  /** Whether the key is out only for a 429's wait (not for failures). */
  coolingDown(now: number): boolean {
    return now < this.coolUntil && !(this.open && (this.probing || now < this.openUntil));
  }

  /** Takes the key for one attempt; true when this attempt is the half-open breaker's probe. */
  take(now: number): boolean {
    if (!this.open || now < this.openUntil) return false;
    this.probing = true;
    return true;
  }

  /** The upstream answered in a way that keeps the call here (2xx, or a 4xx that is the request's own). */
  succeeded(probe: boolean): void {
    this.served++;
    this.consecutive = 0;
    this.open = false;
    if (probe) this.probing = false;
  }

  /** No answer, a 5xx or a 401: counts toward (or re-opens) the breaker. */
  failed(now: number, message: string, probe: boolean): void {
    this.failures++;
    this.lastError = { at: now, message };
    this.consecutive++;
    if (probe) {
      this.probing = false;
      this.open = true;
      this.openUntil = now + this.breaker.cooldownMs;
    } else if (!this.open && this.breaker.failures > 0 && this.consecutive >= this.breaker.failures) {
      this.open = true;
      this.openUntil = now + this.breaker.cooldownMs;
    }
  }

  /** A 429: the key sits out `waitMs`. The key answered, so a probe closes the breaker. */
  rateLimited(now: number, waitMs: number, message: string, probe: boolean): void {
    this.failures++;
    this.lastError = { at: now, message };
    if (this.breaker.sitOutRateLimits) this.coolUntil = Math.max(this.coolUntil, now + waitMs);
    if (probe) {
      this.probing = false;
      this.open = false;
      this.consecutive = 0;
    }
  }

  /** The attempt ended without a verdict (the client left, the gateway stopped): frees a probe. */
  abandoned(probe: boolean): void {
    if (probe) this.probing = false;
  }

  view(now: number): KeyHealthView {
    const base = { consecutiveFailures: this.consecutive, served: this.served, failed: this.failures, lastError: this.lastError };
    if (this.open && (this.probing || now >= this.openUntil)) return { ...base, state: 'half_open', until: null };
    if (this.open) return { ...base, state: 'open', until: this.openUntil };
    if (now < this.coolUntil) return { ...base, state: 'cooling_down', until: this.coolUntil };
    return { ...base, state: 'healthy', until: null };
  }
}
