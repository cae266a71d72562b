/**
 * The pieces of routing on their own: smooth weighted round robin's exact order and shares,
 * a key's breaker and 429 wait through every transition, and how a Retry-After is read.
 */
import { describe, expect, it } from 'vitest';
import { SmoothWeighted } from '../../src/upstreams/balancer.js';
import { KeyHealth } from '../../src/upstreams/health.js';
import { retryAfterMs } from '../../src/upstreams/failover.js';

describe('SmoothWeighted', () => {
  it('weights 3:1 give a a b a, repeated; 5:1:1 spread b and c apart', () => {
    const turns = new SmoothWeighted([3, 1]);
    expect(Array.from({ length: 8 }, () => 'ab'[turns.next(() => true)]).join('')).toBe('aabaaaba');
    const three = new SmoothWeighted([5, 1, 1]);
    expect(Array.from({ length: 7 }, () => 'abc'[three.next(() => true)]).join('')).toBe('aabacaa');
  });

  it('passes over what is not usable, and answers -1 when nothing is', () => {
    const turns = new SmoothWeighted([1, 1, 1]);
    const picks = Array.from({ length: 6 }, () => turns.next((i) => i !== 1));
    expect(picks.filter((i) => i === 1)).toEqual([]);
    expect(picks.filter((i) => i === 0)).toHaveLength(3);
    expect(turns.next(() => false)).toBe(-1);
  });
});

describe('KeyHealth', () => {
  const settings = { failures: 2, cooldownMs: 1_000, sitOutRateLimits: true };

  it('opens after the consecutive failures, half-opens after the cooldown with one probe, re-opens or closes on it', () => {
    const h = new KeyHealth(settings);
    expect(h.availableAt(0)).toBe(0);
    h.failed(0, 'HTTP 500', false);
    expect(h.view(0)).toMatchObject({ state: 'healthy', consecutiveFailures: 1 });
    h.failed(10, 'HTTP 502', false);
    expect(h.view(10)).toMatchObject({ state: 'open', until: 1_010, failed: 2, lastError: { at: 10, message: 'HTTP 502' } });
    expect(h.availableAt(500)).toBe(1_010);
    expect(h.take(500)).toBe(false);
    // Half-open: the first to take it probes; nobody else may meanwhile.
    expect(h.availableAt(1_010)).toBe(1_010);
    expect(h.take(1_010)).toBe(true);
    expect(h.availableAt(1_020)).toBe(Infinity);
    h.failed(1_050, 'upstream_unreachable', true);
    expect(h.view(1_050)).toMatchObject({ state: 'open', until: 2_050 });
    expect(h.take(2_050)).toBe(true);
    h.succeeded(true);
    expect(h.view(2_060)).toMatchObject({ state: 'healthy', consecutiveFailures: 0, served: 1 });
    expect(h.availableAt(2_060)).toBe(2_060);
  });

  it('a probe that ends without a verdict frees the key for the next probe', () => {
    const h = new KeyHealth({ ...settings, failures: 1 });
    h.failed(0, 'x', false);
    expect(h.take(1_000)).toBe(true);
    h.abandoned(true);
    expect(h.availableAt(1_001)).toBe(1_001);
    expect(h.take(1_001)).toBe(true);
  });

  it('a 429 is a wait, not a failure; a probe answered 429 closes the breaker; without sitOutRateLimits no wait', () => {
    const h = new KeyHealth(settings);
    h.rateLimited(0, 5_000, 'HTTP 429', false);
    expect(h.view(0)).toMatchObject({ state: 'cooling_down', until: 5_000, consecutiveFailures: 0 });
    expect(h.coolingDown(4_999)).toBe(true);
    expect(h.availableAt(100)).toBe(5_000);
    expect(h.availableAt(5_000)).toBe(5_000);
    const open = new KeyHealth({ ...settings, failures: 1 });
    open.failed(0, 'HTTP 500', false);
    expect(open.take(1_000)).toBe(true);
    open.rateLimited(1_000, 10, 'HTTP 429', true);
    expect(open.view(1_010)).toMatchObject({ state: 'healthy' });
    const plain = new KeyHealth({ failures: 0, cooldownMs: 0, sitOutRateLimits: false });
    for (let i = 0; i < 100; i++) plain.failed(i, 'HTTP 500', false);
    plain.rateLimited(0, 60_000, 'HTTP 429', false);
    expect(plain.availableAt(1)).toBe(1);
  });
});

describe('retryAfterMs', () => {
  const now = Date.UTC(2026, 0, 1);
  it('retry-after-ms first, then retry-after in seconds or as a date; null when none or unreadable', () => {
    expect(retryAfterMs({ 'retry-after-ms': '1500', 'retry-after': '99' }, now)).toBe(1500);
    expect(retryAfterMs({ 'retry-after': '30' }, now)).toBe(30_000);
    expect(retryAfterMs({ 'retry-after': '0.5' }, now)).toBe(500);
    expect(retryAfterMs({ 'retry-after': new Date(now + 20_000).toUTCString() }, now)).toBe(20_000);
    expect(retryAfterMs({ 'retry-after': new Date(now - 20_000).toUTCString() }, now)).toBe(0);
    expect(retryAfterMs({ 'retry-after': 'soon' }, now)).toBeNull();
    expect(retryAfterMs({ 'retry-after-ms': '-5' }, now)).toBeNull();
    expect(retryAfterMs({}, now)).toBeNull();
  });
});
