/**
 * FailModeLimiter: while the shared limiter cannot be reached, `closed` refuses with a 503
 * `limiter_unavailable` and `open` counts on the local limiter; once the shared one answers again
 * it decides again by itself; every reservation settles where it was made. The shared and local
 * limiters are real MemoryLimiters on SQLite; the outage is a switch in front of the shared one
 * (the real Redis outage is tested end to end in the scale-out tests).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryLimiter } from '../../src/limits/memory.js';
import { FailModeLimiter, type FailMode } from '../../src/limits/fail-mode.js';
import type { Limiter } from '../../src/limits/limiter.js';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { ApiError } from '../../src/errors.js';
import { HOUR, T0 } from './limiter-helpers.js';

class Unreachable extends Error {}

/** Forwards to `inner` while `up`; throws Unreachable otherwise. */
function switchable(inner: Limiter) {
  const state = { up: true, calls: 0 };
  const guard = <T>(run: () => Promise<T>): Promise<T> => {
    state.calls++;
    return state.up ? run() : Promise.reject(new Unreachable('connection refused'));
  };
  const limiter: Limiter = {
    reserve: (rules, costs) => guard(() => inner.reserve(rules, costs)),
    commit: (r, actual) => guard(() => inner.commit(r, actual)),
    release: (r) => guard(() => inner.release(r)),
    peek: (rules) => guard(() => inner.peek(rules)),
    prune: (h) => guard(() => inner.prune(h)),
    close: () => inner.close(),
  };
  return { limiter, state };
}

const rules = [{ name: 'hourly', series: 's', unit: 'requests' as const, windowMs: HOUR, limit: 3 }];
const one = { s: { amount: 1, hold: false } };
const held = { s: { amount: 1, hold: true } };

let dbs: SqliteDatabase[];
let now: number;
let changes: (string | null)[];
let shared: MemoryLimiter;
let local: MemoryLimiter;
let outage: ReturnType<typeof switchable>;

function build(mode: FailMode) {
  return new FailModeLimiter({
    shared: outage.limiter,
    mode,
    local: mode === 'open' ? local : undefined,
    isUnavailable: (err) => err instanceof Unreachable,
    retryMs: 1_000,
    clock: () => now,
    onChange: (err) => changes.push(err === null ? null : (err as Error).message),
  });
}

beforeEach(() => {
  now = T0;
  changes = [];
  dbs = [openSqlite(':memory:'), openSqlite(':memory:')];
  shared = new MemoryLimiter(dbs[0]!, () => now);
  local = new MemoryLimiter(dbs[1]!, () => now);
  outage = switchable(shared);
});
afterEach(async () => {
  await shared.close();
  await local.close();
  for (const db of dbs) db.close();
});

describe('fail closed (the default)', () => {
  it('refuses with a 503 limiter_unavailable while the shared limiter is down, and decides again once it is back', async () => {
    const limiter = build('closed');
    expect((await limiter.reserve(rules, one)).admitted).toBe(true);
    outage.state.up = false;
    const refused = await limiter.reserve(rules, one).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).statusCode).toBe(503);
    expect((refused as ApiError).toBody().error.code).toBe('limiter_unavailable');
    expect(limiter.sharedDown).toBe(true);
    expect(changes).toEqual(['connection refused']);
    // Within retryMs the shared limiter is not asked again: calls fail at once.
    const calls = outage.state.calls;
    await expect(limiter.peek(rules)).rejects.toBeInstanceOf(ApiError);
    expect(outage.state.calls).toBe(calls);

    outage.state.up = true;
    now += 1_000;
    expect((await limiter.reserve(rules, one)).admitted).toBe(true);
    expect(limiter.sharedDown).toBe(false);
    expect(changes).toEqual(['connection refused', null]);
    // The shared limiter kept its count through the outage: 2 of 3 used, nothing counted elsewhere.
    expect((await shared.peek(rules))[0]).toMatchObject({ used: 2, remaining: 1 });
    expect((await local.peek(rules))[0]).toMatchObject({ used: 0 });
  });

  it('passes errors that are not an outage through unchanged', async () => {
    const limiter = new FailModeLimiter({ shared: { ...outage.limiter, reserve: () => Promise.reject(new TypeError('bug')) }, mode: 'closed', isUnavailable: (e) => e instanceof Unreachable });
    await expect(limiter.reserve(rules, one)).rejects.toThrow(TypeError);
  });
});

describe('fail open', () => {
  it('counts on the local limiter while the shared one is down, exactly, and goes back to the shared one', async () => {
    const limiter = build('open');
    outage.state.up = false;
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push((await limiter.reserve(rules, one)).admitted);
    expect(decisions).toEqual([true, true, true, false]); // the local limit holds, too
    expect((await local.peek(rules))[0]).toMatchObject({ used: 3 });
    outage.state.up = true;
    now += 1_000;
    expect((await limiter.reserve(rules, one)).admitted).toBe(true);
    expect((await shared.peek(rules))[0]).toMatchObject({ used: 1 });
  });

  it('settles each reservation where it was made', async () => {
    const limiter = build('open');
    const onShared = await limiter.reserve(rules, held);
    outage.state.up = false;
    const onLocal = await limiter.reserve(rules, held);
    expect((await local.peek(rules))[0]).toMatchObject({ used: 1 });
    // Settled to 0 on the local limiter: its hold is gone (were it sent to the shared one, it would stay).
    await limiter.commit(onLocal.reservation!, { s: 0 });
    expect((await local.peek(rules))[0]).toMatchObject({ used: 0 });
    // The shared reservation cannot settle during the outage: no error, its hold stays (it expires by itself).
    await expect(limiter.release(onShared.reservation!)).resolves.toBeUndefined();
    expect((await shared.peek(rules))[0]).toMatchObject({ used: 1 });
    outage.state.up = true;
    now += 1_000;
    await limiter.release(onShared.reservation!);
    expect((await shared.peek(rules))[0]).toMatchObject({ used: 0 });
  });
});
