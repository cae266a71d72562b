/**
 * The call object's settle-once guard, on a real SQLite limiter and store: however often and
 * however concurrently `settle` is called, the limiter is committed once and the first outcome
 * wins; `settled` resolves (never rejects) with that settlement, also for a call the limiter
 * refused (nothing to commit) and when the commit itself fails (logged).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { BILL_NOTHING, BILL_PROMPT, ProxyCall, type CallContext } from '../../src/call/proxy-call.js';
import { CallLimits } from '../../src/limits/call-limits.js';
import { GLOBAL_REQUESTS, globalRules } from '../../src/limits/rules.js';
import { PriceBook } from '../../src/metering/price-book.js';
import { UpstreamPool } from '../../src/proxy/forward.js';
import { Redactor } from '../../src/redact.js';
import type { Store } from '../../src/contract.js';
import { openStore } from '../../src/store/open.js';
import type { Principal } from '../../src/auth/authenticator.js';
import { ApiError } from '../../src/errors.js';
import { limiterFixture } from '../limits/limiter-helpers.js';

const { ctx } = limiterFixture('sqlite');
let store: Store;
let pool: UpstreamPool;
let log: { error: ReturnType<typeof vi.fn> };

beforeEach(async () => {
  store = await openStore({ kind: 'sqlite', path: join(ctx.dir, 'store.db') });
  pool = new UpstreamPool(new URL('http://127.0.0.1:9/v1'), 'sk-never-used', 1_000);
  log = { error: vi.fn() };
});
afterEach(async () => {
  vi.restoreAllMocks();
  await pool.close();
  await store.close();
});

const principal: Principal = { id: 'env:test', name: 'env:test', source: 'env', policy: null, version: 0, expiresAt: null };

/** A call of `principal` against an hourly limit of `limit` requests, counted only on success. */
function newCall(limit = 10): ProxyCall {
  const limits = new CallLimits({
    limiter: ctx.limiter,
    prices: new PriceBook(store, ctx.clock),
    globalRules: globalRules({ hourlyRateLimit: limit, dailyRateLimit: null }),
    countMode: 'success',
  });
  const context: CallContext = { limits, pool, redactor: new Redactor([]), defaultMaxTokens: 100 };
  const body = { model: 'gpt-4o-mini', stream: false, json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } };
  return new ProxyCall(context, principal, body, log as unknown as FastifyBaseLogger);
}

const reported = { promptTokens: 7, completionTokens: 3, cachedTokens: 0 };

describe('ProxyCall.settle', () => {
  it('commits once however often it is called, concurrently or later; the first outcome wins', async () => {
    const call = newCall();
    await call.reserve();
    const commit = vi.spyOn(ctx.limiter, 'commit');
    const first = call.settle({ reported, delivered: '' });
    const second = call.settle(BILL_NOTHING);
    await Promise.all([first, second, call.settle(BILL_PROMPT)]);
    await call.settle({ reported: { promptTokens: 1, completionTokens: 1, cachedTokens: 0 }, delivered: null });
    expect(commit).toHaveBeenCalledTimes(1);
    expect(second).toBe(first);
    expect(commit.mock.calls[0]![0]).toBe(call.admission!.reservation);
    // No answer came (no status), so the held request slot is released, counted as nothing.
    expect(commit.mock.calls[0]![1]).toEqual({ [GLOBAL_REQUESTS]: 0 });
    expect(await call.settled).toEqual({ usage: reported, costMicroUsd: expect.any(Number), estimated: false });
    expect(call.settlement!.costMicroUsd).toBeGreaterThan(0);
  });

  it('settled waits for the settle and then resolves with it; at once for a call settled already', async () => {
    const call = newCall();
    await call.reserve();
    const waiting = call.settled;
    expect(call.isSettled).toBe(false);
    await call.settle({ reported, delivered: '' });
    expect(call.isSettled).toBe(true);
    expect(await waiting).toBe(call.settlement);
    expect(await call.settled).toBe(call.settlement);
    expect(call.settlement).not.toBeNull();
  });

  it('a refused call is settled at once with nothing to commit', async () => {
    const admitted = newCall(1);
    await admitted.reserve();
    const commit = vi.spyOn(ctx.limiter, 'commit');
    const refused = newCall(1);
    const error = await refused.reserve().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).statusCode).toBe(429);
    expect(refused.isSettled).toBe(true);
    expect(await refused.settled).toBeNull();
    await refused.settle({ reported, delivered: '' });
    expect(commit).not.toHaveBeenCalled();
  });

  it('never rejects: a commit that fails is logged, and the call is settled without a settlement', async () => {
    const call = newCall();
    await call.reserve();
    vi.spyOn(ctx.limiter, 'commit').mockRejectedValueOnce(new Error('disk gone'));
    await expect(call.settle({ reported, delivered: '' })).resolves.toBeUndefined();
    await expect(call.settled).resolves.toBeNull();
    expect(log.error).toHaveBeenCalledTimes(1);
    expect(log.error.mock.calls[0]![1]).toBe('settling a call failed');
  });
});
