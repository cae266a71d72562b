/**
 * The Redis limiter when Redis fails, against a redis-server this test starts on a port of its
 * own (with a password): killed, every call rejects with LimiterUnavailable within a bound (the
 * message names the server, never the password), the outage is reported once, and when the
 * server comes back on the same port the same limiter instance admits again with no restart;
 * stalled (SIGSTOP), a call gives up at its timeout; a limiter started while Redis is down
 * recovers once it is up; a server that lost its script cache gets the scripts again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LimiterUnavailable, RedisLimiter } from '../../src/limits/redis.js';
import type { LimitRule } from '../../src/limits/limiter.js';
import { RedisServer, uniquePrefix } from '../support/redis.js';
import { eventually } from '../keys/helpers.js';
import { REDIS_URL } from './limiter-helpers.js';

const PASSWORD = 'fault-test-secret-4711';
const TIMEOUT_MS = 300;
/** Generous: a rejection must come within the timeout, this only catches a call that hangs. */
const BOUND_MS = 5_000;
const rules: LimitRule[] = [{ name: 'hourly', series: 'global:requests', unit: 'requests', windowMs: 3_600_000, limit: 1000 }];
const cost = { 'global:requests': { amount: 1, hold: false } };

/** What a call's failure was, and how long it took. */
async function failure(call: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = Date.now();
  try {
    await call();
  } catch (err) {
    return { err, ms: Date.now() - started };
  }
  throw new Error('the call succeeded while Redis was down');
}

function expectUnavailable({ err, ms }: { err: unknown; ms: number }, server: RedisServer): void {
  expect(err).toBeInstanceOf(LimiterUnavailable);
  const message = (err as Error).message;
  expect(message).toContain(`127.0.0.1:${server.port}`);
  expect(message).not.toContain(PASSWORD);
  expect(ms).toBeLessThan(BOUND_MS);
}

describe.skipIf(REDIS_URL === null)('Redis limiter faults', () => {
  let server: RedisServer;
  const limiters: RedisLimiter[] = [];
  beforeAll(async () => {
    server = await RedisServer.start({ password: PASSWORD });
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    server.resume();
    for (const l of limiters.splice(0)) await l.close();
    await server.start().catch(() => {}); // running again for the next test (it may be running)
  });
  const limiter = (onError?: (err: LimiterUnavailable) => void) => {
    const l = new RedisLimiter({ url: server.url, prefix: uniquePrefix('faults'), timeoutMs: TIMEOUT_MS, onError });
    limiters.push(l);
    return l;
  };
  const admitsAgain = (l: RedisLimiter) =>
    eventually('the limiter admits again', () => l.reserve(rules, cost).then((d) => d.admitted, () => false), Boolean, 15_000);

  it('rejects every call with LimiterUnavailable while Redis is down, then recovers by itself on the same instance', async () => {
    const reported: LimiterUnavailable[] = [];
    const l = limiter((err) => reported.push(err));
    expect((await l.reserve(rules, cost)).admitted).toBe(true);
    const held = await l.reserve(rules, { 'global:requests': { amount: 1, hold: true } });

    await server.stop();
    expectUnavailable(await failure(() => l.reserve(rules, cost)), server);
    expectUnavailable(await failure(() => l.peek(rules)), server);
    expectUnavailable(await failure(() => l.commit(held.reservation!)), server);
    expectUnavailable(await failure(() => l.release(held.reservation!)), server);
    expectUnavailable(await failure(() => l.ping()), server);
    expectUnavailable(await failure(() => l.prune(() => 1)), server);
    // Reported once for the outage, however often the client retries meanwhile.
    await eventually('the outage is reported', () => reported.length, (n) => n > 0);
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await failure(() => l.reserve(rules, cost));
    }
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(LimiterUnavailable);
    expect(reported[0]!.message).not.toContain(PASSWORD);

    await server.start();
    await admitsAgain(l);
    await l.ping();
    // The next outage is reported again.
    await server.stop();
    await eventually('the second outage is reported', () => reported.length, (n) => n === 2);
  });

  it('gives up at the timeout when Redis stalls, and the call may still count once Redis goes on (the safe side)', async () => {
    const l = limiter();
    expect((await l.reserve(rules, cost)).admitted).toBe(true);
    server.pause();
    const stalled = await failure(() => l.reserve(rules, cost));
    expectUnavailable(stalled, server);
    expect((stalled.err as Error).message).toContain(`no answer within ${TIMEOUT_MS} ms`);
    server.resume();
    await eventually('Redis answers again', () => l.ping().then(() => true, () => false), Boolean, 15_000);
    // The stalled reserve ran when Redis went on (before the ping, on the same connection): it
    // counts although its caller was refused.
    expect((await l.peek(rules))[0]!.used).toBe(2);
    expect((await l.reserve(rules, cost)).admitted).toBe(true);
  });

  it('recovers when it was started while Redis was down', async () => {
    await server.stop();
    const l = limiter();
    expectUnavailable(await failure(() => l.reserve(rules, cost)), server);
    await server.start();
    await admitsAgain(l);
  });

  it('loads its scripts again when the server has lost them', async () => {
    const l = limiter();
    expect((await l.reserve(rules, cost)).admitted).toBe(true);
    // SCRIPT FLUSH through a plain client: the limiter's next EVALSHA meets NOSCRIPT.
    const { Redis } = await import('ioredis');
    const plain = new Redis(server.url);
    try {
      await plain.script('FLUSH');
    } finally {
      plain.disconnect();
    }
    expect((await l.reserve(rules, cost)).admitted).toBe(true);
    expect((await l.peek(rules))[0]!.used).toBe(2);
  });
});
