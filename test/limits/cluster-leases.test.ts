/**
 * Leases (src/limits/cluster-leases.ts, lease-book.ts) over the fake IPC channel, the primary's
 * limiter a MemoryLimiter on a real SQLite file: a busy worker admits calls from a lease without
 * asking per call, and what they counted reaches the primary; with two workers racing for a limit,
 * exactly the limit is admitted (a lease never lets a call past it); an idle worker's lease is
 * called back before anyone else is refused, and only when that can change the answer; a lease
 * counts what its calls used, not what they held; one no call spends goes back after LEASE_MS; a
 * worker that exits with a lease counts all of it still held; leases go when the worker numbers
 * its rule sets anew, and a lease granted after that goes back at once; a lease whose grant has
 * not left is withdrawn rather than waited for, and not counted when its worker exits; a rule set
 * without ample room is never leased, nor a cap on calls in flight.
 */
import { describe, expect, it } from 'vitest';
import { ClusterLimiter, RULE_SETS_KEPT, serveLimiter } from '../../src/limits/cluster.js';
import { AMPLE_LEASES, LEASE_CALLS, LEASE_MS, REPORT_MS } from '../../src/limits/cluster-leases.js';
import type { LimitRule, Reservation, SeriesCost } from '../../src/limits/limiter.js';
import { ipcPair, type IpcPair } from './fake-ipc.js';
import { daily, generator, HOUR, hourly, limiterFixture } from './limiter-helpers.js';

/** Rule sets as CallLimits makes them: frozen (only a frozen set goes by number, and is leased). */
const frozen = (...rules: LimitRule[]): readonly LimitRule[] => Object.freeze(rules.map((r) => Object.freeze({ ...r })));
const tokensHourly = (limit: number): LimitRule => ({ name: 'tokens_hourly', series: 't', unit: 'tokens', windowMs: HOUR, limit });
const oneCall: Record<string, SeriesCost> = { s: { amount: 1, hold: false } };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every call the worker sent to the primary so far, by operation. */
function opsSent(channel: IpcPair): string[] {
  return channel.sent.toPrimary.flatMap((m) => (m as { calls: { op: string }[] }).calls.map((c) => c.op));
}

describe('cluster leases', () => {
  const { ctx } = limiterFixture('memory');

  function connectWorker(): { worker: ClusterLimiter; channel: IpcPair } {
    const channel = ipcPair();
    serveLimiter(ctx.limiter, channel.primary);
    return { worker: new ClusterLimiter(channel.worker, { clock: ctx.clock }), channel };
  }

  it('admits a busy worker’s calls from a lease without asking per call, and the primary counts them', async () => {
    const { worker, channel } = connectWorker();
    const rules = frozen(hourly(1_000_000));
    // The first call asks per call, and for a lease with it.
    expect((await worker.reserve(rules, oneCall)).admitted).toBe(true);
    await sleep(1);
    expect(opsSent(channel)).toEqual(['reserve', 'lease']);
    const decisions = [];
    for (let i = 0; i < 20; i++) decisions.push(await worker.reserve(rules, oneCall));
    expect(decisions.every((d) => d.admitted)).toBe(true);
    expect(opsSent(channel).filter((op) => op === 'reserve')).toHaveLength(1);
    // Each call's headers count it: the worker's own spending since the grant is in them.
    expect(decisions.map((d) => d.states[0]!.remaining)).toEqual(Array.from({ length: 20 }, (_, i) => 1_000_000 - 2 - i));
    await sleep(REPORT_MS * 3);
    expect(opsSent(channel)).toContain('draw');
    // Counted 21; what its lease has left is still held for this worker, until it gives it back.
    const whileLeased = (await ctx.limiter.peek(rules))[0]!.used;
    expect(whileLeased).toBeGreaterThan(21);
    expect(whileLeased).toBeLessThanOrEqual(21 + LEASE_CALLS);
    await worker.close();
    await sleep(REPORT_MS);
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 21, remaining: 1_000_000 - 21 });
  });

  it('admits exactly the limit when two workers race for it, leases or not', async () => {
    const limit = LEASE_CALLS * AMPLE_LEASES * 3 + 7;
    const rules = frozen(hourly(limit));
    const workers = [connectWorker(), connectWorker()];
    let admitted = 0;
    let refused = 0;
    await Promise.all(
      workers.map(async ({ worker }) => {
        for (let i = 0; i <= limit; i++) {
          const decision = await worker.reserve(rules, oneCall);
          if (!decision.admitted) {
            refused++;
            return;
          }
          admitted++;
        }
      }),
    );
    expect(admitted).toBe(limit);
    expect(refused).toBe(2);
    // Leases were used on the way (fewer reserves than calls), and nothing is held any more.
    const reserves = workers.reduce((n, { channel }) => n + opsSent(channel).filter((op) => op === 'reserve').length, 0);
    expect(reserves).toBeLessThan(limit / 2);
    await sleep(REPORT_MS * 3);
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: limit, remaining: 0 });
  });

  it('calls an idle worker’s lease back before refusing anyone: the limit is reached, not the limit less its lease', async () => {
    const limit = LEASE_CALLS * AMPLE_LEASES * 2;
    const rules = frozen(hourly(limit));
    const idle = connectWorker();
    await idle.worker.reserve(rules, oneCall);
    await sleep(1); // its lease granted
    for (let i = 0; i < 2; i++) expect((await idle.worker.reserve(rules, oneCall)).admitted).toBe(true);
    const busy = connectWorker();
    let admitted = 0;
    for (let i = 0; i <= limit; i++) {
      if (!(await busy.worker.reserve(rules, oneCall)).admitted) break;
      admitted++;
    }
    expect(admitted).toBe(limit - 3);
    expect(idle.channel.sent.toWorker.some((m) => (m as { proxygptLimiter: string }).proxygptLimiter === 'recall')).toBe(true);
    // The idle worker's lease is back: its next call asks, and is refused.
    expect((await idle.worker.reserve(rules, oneCall)).admitted).toBe(false);
  });

  it('calls back no lease for a refusal it cannot change: a key at its own limit leaves the global leases alone', async () => {
    const global = hourly(1_000_000, 'g');
    const leasing = connectWorker();
    await leasing.worker.reserve(frozen(global), { g: { amount: 1, hold: false } });
    await sleep(1); // leased, on the global series
    const other = connectWorker();
    const keyed = frozen(global, { ...hourly(3, 'k'), name: 'key_hourly' });
    const admitted = [];
    for (let i = 0; i < 5; i++) admitted.push((await other.worker.reserve(keyed, { g: { amount: 1, hold: false }, k: { amount: 1, hold: false } })).admitted);
    expect(admitted).toEqual([true, true, true, false, false]);
    expect(leasing.channel.sent.toWorker.some((m) => (m as { proxygptLimiter: string }).proxygptLimiter === 'recall')).toBe(false);
  });

  it('counts what calls from a lease used, not what they held', async () => {
    const { worker } = connectWorker();
    const rules = frozen(hourly(1_000_000), tokensHourly(100_000_000));
    const call: Record<string, SeriesCost> = { s: { amount: 1, hold: false }, t: { amount: 100, hold: true } };
    const first = await worker.reserve(rules, call);
    await sleep(1);
    const fromLease = [];
    for (let i = 0; i < 10; i++) fromLease.push(await worker.reserve(rules, call));
    await worker.commit(first.reservation!, { t: 40 });
    for (const [i, d] of fromLease.entries()) {
      if (i === 0) await worker.release(d.reservation!);
      else await worker.commit(d.reservation!, { t: i === 9 ? 250 : 40 }); // the last one used more than it held
    }
    await worker.close();
    await sleep(REPORT_MS * 3);
    const [requests, tokens] = await ctx.limiter.peek(rules);
    expect(requests!.used).toBe(11);
    expect(tokens!.used).toBe(40 + 8 * 40 + 250);
  });

  it('gives back a lease no call spent within LEASE_MS: the primary holds an idle worker’s room no longer', async () => {
    const { worker } = connectWorker();
    const rules = frozen(hourly(1_000_000));
    await worker.reserve(rules, oneCall);
    await sleep(1);
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1 + LEASE_CALLS);
    ctx.now += LEASE_MS;
    await sleep(LEASE_MS + REPORT_MS * 3);
    expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1_000_000 - 1 });
    await worker.close();
  });

  it('counts all of a lease still held when its worker exits (its calls’ use since the last report is not known)', async () => {
    const { worker, channel } = connectWorker();
    const rules = frozen(hourly(1_000_000));
    await worker.reserve(rules, oneCall);
    await sleep(1);
    for (let i = 0; i < 5; i++) await worker.reserve(rules, oneCall);
    channel.exit();
    expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1 + LEASE_CALLS);
  });

  it('gives its leases back when it numbers its rule sets anew: a lease never admits a call of another rule set', async () => {
    const { worker } = connectWorker();
    const leased = frozen(hourly(1_000_000));
    await worker.reserve(leased, oneCall);
    await sleep(1); // leased, under rule set number 0
    expect((await worker.reserve(leased, oneCall)).admitted).toBe(true);
    // As many other sets as the worker numbers: it starts again at 0, with a stricter set on the same series.
    await Promise.all(Array.from({ length: RULE_SETS_KEPT - 1 }, (_, i) => worker.peek(frozen(hourly(100, `other${i}`)))));
    const stricter = frozen(hourly(1_000_000), { ...daily(5), name: 'daily' });
    const decisions = [];
    for (let i = 0; i < 6; i++) decisions.push(await worker.reserve(stricter, oneCall));
    expect(decisions.map((d) => d.admitted)).toEqual([true, true, true, false, false, false]); // 2 counted before, daily limit 5
  });

  it('gives back at once a lease granted for a number that meant another rule set by the time the grant came', async () => {
    const { worker, channel } = connectWorker();
    const leased = frozen(hourly(1_000_000));
    const stricter = frozen(hourly(1_000_000), { ...daily(3), name: 'daily' });
    const first = worker.reserve(leased, oneCall); // rule set 0, and a lease asked for it
    // While that batch is at the primary, the worker numbers anew: 0 is `stricter` from now on.
    const peeks = [...Array.from({ length: RULE_SETS_KEPT - 1 }, (_, i) => worker.peek(frozen(hourly(100, `other${i}`)))), worker.peek(stricter)];
    await Promise.all([first, ...peeks]); // the lease for the first set came after the numbers changed
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await worker.reserve(stricter, oneCall));
    expect(decisions.map((d) => d.admitted)).toEqual([true, true, false, false]); // 1 counted before, daily limit 3
    await sleep(REPORT_MS * 3);
    // The stale lease's room went back: the primary holds nothing for it.
    expect((await ctx.limiter.peek(leased))[0]).toMatchObject({ used: 3, remaining: 1_000_000 - 3 });
    expect(opsSent(channel)).toContain('lease');
  });

  it('withdraws a lease whose grant has not left when a call it stands in the way of is refused, instead of waiting for a report that cannot come', async () => {
    const { worker, channel } = connectWorker();
    const leased = frozen(hourly(1_000_000));
    const stricter = frozen(hourly(1_000_000), { ...daily(3), name: 'daily' }); // the same series: the key's limits changed
    // One batch: the first call, a lease for its rule set (room for LEASE_CALLS calls held), then a call of the stricter set.
    const first = worker.reserve(leased, oneCall);
    const second = worker.reserve(stricter, oneCall);
    expect((await first).admitted).toBe(true);
    // The lease held more than the daily limit leaves; the answer with its grant waited for this call.
    expect(await second).toMatchObject({ admitted: true });
    expect(opsSent(channel).filter((op) => op === 'lease')).toHaveLength(2);
    // Withdrawn, not counted: the worker got no lease, and the third call of the day is the last admitted.
    await sleep(REPORT_MS * 3);
    expect((await ctx.limiter.peek(stricter)).map((s) => s.used)).toEqual([2, 2]);
    expect((await worker.reserve(stricter, oneCall)).admitted).toBe(true);
    expect((await worker.reserve(stricter, oneCall)).admitted).toBe(false);
    expect((await worker.reserve(leased, oneCall)).admitted).toBe(true); // asked per call: no lease of the first set either
    expect(opsSent(channel).filter((op) => op === 'reserve')).toHaveLength(5);
  });

  it('counts nothing of a lease whose grant never left when its worker exits', async () => {
    const a = connectWorker();
    const b = connectWorker();
    const shared = frozen(hourly(1_000_000));
    const ownSeries = frozen(hourly(1_000_000, 'x'));
    const stricter = frozen(hourly(1_000_000), { ...daily(3), name: 'daily' });
    await b.worker.reserve(shared, oneCall);
    await sleep(1); // b holds a lease on s
    b.channel.pause(); // a recall of b's lease now waits for its report
    void a.worker.reserve(ownSeries, { x: { amount: 1, hold: false } }); // asks, and for a lease on x
    void a.worker.reserve(stricter, oneCall); // the same batch: refused while b's lease is out, so the batch waits
    await sleep(100);
    a.channel.exit(); // before the batch's answer, with a's lease on x in it, left
    b.channel.resume();
    await sleep(REPORT_MS * 3);
    expect((await ctx.limiter.peek(ownSeries))[0]!.used).toBe(1);
  });

  it.each([1, 2, 3, 4, 5, 6])('over 3,000 random calls of two workers, admits and refuses exactly as the counts say (seed %i)', async (seed) => {
    const rand = generator(seed);
    const limits = { s: 1_400, t: 600_000 };
    const rules = frozen(hourly(limits.s), tokensHourly(limits.t));
    const workers = [connectWorker(), connectWorker()];
    /** What the limits count as the test keeps it: requests admitted; tokens used by settled calls plus held by calls in flight. */
    const model = { s: 0, t: 0 };
    const inFlight: { worker: ClusterLimiter; reservation: Reservation; held: number }[] = [];
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const settle = inFlight.length > 0 && rand.chance(0.45);
      if (settle) {
        const call = inFlight.splice(rand.int(inFlight.length), 1)[0]!;
        model.t -= call.held;
        if (rand.chance(0.1)) {
          await call.worker.release(call.reservation);
        } else {
          const used = rand.int(Math.ceil(call.held * 1.5) + 1); // sometimes more than it held
          await call.worker.commit(call.reservation, { t: used });
          model.t += used;
        }
        continue;
      }
      const worker = workers[rand.int(2)]!.worker;
      const tokens = 100 + rand.int(901);
      const decision = await worker.reserve(rules, { s: { amount: 1, hold: false }, t: { amount: tokens, hold: true } });
      const fits = model.s + 1 <= limits.s && model.t + tokens <= limits.t;
      expect({ i, admitted: decision.admitted }).toEqual({ i, admitted: fits });
      if (!decision.admitted) {
        refused++;
        continue;
      }
      model.s += 1;
      model.t += tokens;
      inFlight.push({ worker, reservation: decision.reservation!, held: tokens });
    }
    expect(refused).toBeGreaterThan(50);
    for (const { worker } of workers) await worker.close();
    await sleep(REPORT_MS * 2);
    const states = await ctx.limiter.peek(rules);
    expect(states.map((st) => st.used)).toEqual([model.s, model.t]);
  });

  it('leases nothing without ample room, nor a cap on calls in flight: every call asks', async () => {
    const small = frozen(hourly(LEASE_CALLS * AMPLE_LEASES));
    const capped = frozen(hourly(1_000_000), { name: 'concurrent', series: 'c', unit: 'requests', windowMs: 0, limit: 1_000 });
    for (const rules of [small, capped]) {
      const { worker, channel } = connectWorker();
      const costs = Object.fromEntries(rules.map((r) => [r.series, { amount: 1, hold: r.series === 'c' }]));
      for (let i = 0; i < 6; i++) {
        const decision = await worker.reserve(rules, costs);
        if (decision.reservation?.id) await worker.commit(decision.reservation);
        await sleep(1);
      }
      expect(opsSent(channel).filter((op) => op === 'reserve')).toHaveLength(6);
    }
  });
});
