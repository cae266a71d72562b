/**
 * The cluster limiter over a fake IPC channel that behaves like Node's (JSON copies, delivery in a
 * later turn): a worker's calls of one turn travel in one message, calls made while a batch is at
 * the primary wait and go together, and every caller gets its own answer; a worker that exits has its unsettled holds released at once while other workers' stay;
 * errors cross the channel (a RangeError stays one) and a lost primary rejects calls instead of
 * leaving them hanging; settling a reservation that holds nothing, pruning and closing send nothing.
 * The primary's limiter is a MemoryLimiter on a real SQLite file with an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { ClusterLimiter, RULE_SETS_KEPT, serveLimiter } from '../../src/limits/cluster.js';
import type { Decision, Limiter, RuleState } from '../../src/limits/limiter.js';
import { ipcPair, turn, type IpcPair } from './fake-ipc.js';
import { costs, HOUR, hourly, limiterFixture } from './limiter-helpers.js';

/** The calls a worker sent in message `i` (fails the test when it is no calls message). */
function callsIn(channel: IpcPair, i: number): { op: string; id: number }[] {
  const message = channel.sent.toPrimary[i] as { proxygptLimiter: string; calls: { op: string; id: number }[] };
  expect(message.proxygptLimiter).toBe('calls');
  return message.calls;
}

describe('cluster limiter', () => {
  // ctx.limiter is the primary's MemoryLimiter; each test connects its own workers to it.
  const { ctx } = limiterFixture('memory');

  /** A worker's ClusterLimiter served by the primary's limiter (or `limiter`) over a new fake channel. */
  function connectWorker(limiter: Limiter = ctx.limiter): { worker: ClusterLimiter; channel: IpcPair } {
    const channel = ipcPair();
    serveLimiter(limiter, channel.primary);
    return { worker: new ClusterLimiter(channel.worker), channel };
  }

  describe('batching', () => {
    it('sends the calls of one turn in one message and gives each caller its own answer', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(7)];
      const reserves = Array.from({ length: 20 }, () => worker.reserve(rules, costs(rules, 1, true)));
      const peek = worker.peek(rules);
      const decisions = await Promise.all(reserves);

      expect(channel.sent.toPrimary).toHaveLength(1);
      expect(callsIn(channel, 0).map((c) => c.op)).toEqual([...Array<string>(20).fill('reserve'), 'peek']);
      expect(channel.sent.toWorker).toHaveLength(1);

      // Exactly 7 admitted: the first 7 callers, each seeing the count including its own hold.
      expect(decisions.filter((d) => d.admitted)).toHaveLength(7);
      decisions.forEach((decision: Decision, i) => {
        if (i < 7) {
          expect(decision.admitted).toBe(true);
          expect(decision.states[0]).toMatchObject({ used: i + 1, remaining: 6 - i });
          expect(decision.reservation?.held).toEqual({ s: 1 });
        } else {
          expect(decision).toMatchObject({ admitted: false, blockedBy: 'hourly' });
          expect(decision.reservation).toBeUndefined();
          expect(decision.states[0]).toMatchObject({ used: 7, remaining: 0 });
        }
      });
      const ids = decisions.filter((d) => d.admitted).map((d) => d.reservation!.id);
      expect(new Set(ids).size).toBe(7);
      // The peek queued last was answered last, with a RuleState[] and not someone's Decision.
      expect((await peek) satisfies RuleState[]).toEqual([expect.objectContaining({ name: 'hourly', used: 7, remaining: 0 })]);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(7);

      // Settling all seven in one turn is again one message; the counts land in the primary.
      await Promise.all(decisions.filter((d) => d.admitted).map((d, i) => (i < 4 ? worker.commit(d.reservation!) : worker.release(d.reservation!))));
      expect(channel.sent.toPrimary).toHaveLength(2);
      expect(callsIn(channel, 1).map((c) => c.op)).toEqual(['commit', 'commit', 'commit', 'commit', 'release', 'release', 'release']);
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 4, remaining: 3, resetMs: HOUR });
    });

    it('sends calls of later turns in later messages', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(5)];
      for (let i = 1; i <= 3; i++) {
        expect((await worker.reserve(rules, costs(rules, 1, false))).states[0]!.used).toBe(i);
        expect(channel.sent.toPrimary).toHaveLength(i);
      }
    });

    it('keeps one batch at the primary at a time: calls made while it is out go together once it is answered', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(50)];
      channel.pause();
      const first = worker.reserve(rules, costs(rules, 1, false));
      await turn();
      expect(channel.sent.toPrimary).toHaveLength(1);
      // Three more turns, one call each, while the first batch is still out: nothing more is sent.
      const later: Promise<Decision>[] = [];
      for (let i = 0; i < 3; i++) {
        later.push(worker.reserve(rules, costs(rules, 1, false)));
        await turn();
      }
      expect(channel.sent.toPrimary).toHaveLength(1);
      channel.resume();
      expect((await first).states[0]!.used).toBe(1);
      const decisions = await Promise.all(later);
      expect(channel.sent.toPrimary).toHaveLength(2);
      expect(callsIn(channel, 1).map((c) => c.op)).toEqual(['reserve', 'reserve', 'reserve']);
      expect(decisions.map((d) => d.states[0]!.used).sort()).toEqual([2, 3, 4]);
    });

    it('sends a frozen rule set once and then only its number; any other array every time', async () => {
      const { worker, channel } = connectWorker();
      const frozen = Object.freeze([Object.freeze(hourly(10))]);
      for (let i = 1; i <= 3; i++) expect((await worker.reserve(frozen, costs([hourly(10)], 1, false))).states[0]!.used).toBe(i);
      const sent = [0, 1, 2].map((i) => callsIn(channel, i)[0] as { rules?: unknown; rulesId?: number });
      expect(sent[0]).toMatchObject({ rules: [hourly(10)], rulesId: 0 });
      for (const later of sent.slice(1)) {
        expect(later.rules).toBeUndefined();
        expect(later.rulesId).toBe(0);
      }
      // Peeking with the same set names it too; a plain array goes inline, with no number.
      expect((await worker.peek(frozen))[0]!.used).toBe(3);
      expect(callsIn(channel, 3)[0]).toEqual({ op: 'peek', rulesId: 0, id: expect.any(Number) });
      const plain = [hourly(10)];
      await worker.reserve(plain, costs(plain, 1, false));
      await worker.reserve(plain, costs(plain, 1, false));
      for (const i of [4, 5]) {
        const inline = callsIn(channel, i)[0] as { rules?: unknown; rulesId?: number };
        expect(inline.rules).toEqual(plain);
        expect(inline.rulesId).toBeUndefined();
      }
      expect((await worker.peek(frozen))[0]!.used).toBe(5);
    });

    it('starts numbering again past RULE_SETS_KEPT sets, and the primary forgets the old ones first', async () => {
      const { worker, channel } = connectWorker();
      const sets = Array.from({ length: RULE_SETS_KEPT + 1 }, (_, i) => Object.freeze([Object.freeze(hourly(100, `s${i}`))]));
      await Promise.all(sets.slice(0, RULE_SETS_KEPT).map((set) => worker.peek(set)));
      const last = await worker.peek(sets[RULE_SETS_KEPT]!);
      expect(last[0]!.used).toBe(0);
      const lastCalls = callsIn(channel, channel.sent.toPrimary.length - 1);
      expect(lastCalls.map((c) => c.op)).toEqual(['forgetRules', 'peek']);
      expect(lastCalls[1]).toMatchObject({ rulesId: 0 });
      // The first set was forgotten on both sides: it is sent again, under a new number.
      await worker.reserve(sets[0]!, costs([hourly(100, 's0')], 1, false));
      expect(callsIn(channel, channel.sent.toPrimary.length - 1)[0]).toMatchObject({ op: 'reserve', rulesId: 1, rules: [hourly(100, 's0')] });
      expect((await worker.peek(sets[0]!))[0]!.used).toBe(1);
    });

    it('keeps two workers apart: each gets the answers to its own calls', async () => {
      const a = connectWorker();
      const b = connectWorker();
      const rules = [hourly(100, 'a'), hourly(100, 'b')];
      const [fromA, fromB] = await Promise.all([
        a.worker.reserve(rules, { a: { amount: 3, hold: false } }),
        b.worker.reserve(rules, { b: { amount: 5, hold: false } }),
      ]);
      expect(fromA.states.map((s) => s.used)).toEqual([3, 0]);
      expect(fromB.states.map((s) => s.used)).toEqual([3, 5]);
      expect([a.channel.sent.toWorker.length, b.channel.sent.toWorker.length]).toEqual([1, 1]);
    });
  });

  describe('a worker that exits', () => {
    it('has its unsettled holds released at once, while settled counts and other workers’ holds stay', async () => {
      const a = connectWorker();
      const b = connectWorker();
      const rules = [hourly(10)];
      const held = (w: ClusterLimiter) => w.reserve(rules, costs(rules, 1, true));
      const aHolds = await Promise.all([held(a.worker), held(a.worker), held(a.worker)]);
      await a.worker.reserve(rules, costs(rules, 1, false)); // counted at once
      await a.worker.commit((await held(a.worker)).reservation!); // settled: counted
      const bHolds = await Promise.all([held(b.worker), held(b.worker)]);
      expect(aHolds.concat(bHolds).every((d) => d.admitted)).toBe(true);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(7);

      a.channel.exit();
      // Straight away, with no turn in between: A's three holds are gone, the rest stays.
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(4);

      // B's holds are still B's to settle.
      await b.worker.commit(bHolds[0]!.reservation!);
      await b.worker.release(bHolds[1]!.reservation!);
      expect((await ctx.limiter.peek(rules))[0]).toMatchObject({ used: 3, remaining: 7 });
    });

    // Node can deliver a worker's last message after the worker's 'exit' event. Measured on Node
    // 20.20 with `cluster`: 40 workers each send one 200 kB message and call process.exit() at
    // once; in three runs 1, 0 and 5 of the 40 messages reached the primary after that worker's
    // 'exit'. A reserve arriving like that (a worker crashing right after a large batch) must not
    // leave a hold nobody will settle: it would take room until `prune` sweeps it
    // (upstreamTimeoutMs + 60 s later). So serveLimiter serves nothing that arrives after the
    // worker's exit (whose handler released that worker's holds).
    it('lets no call that reaches the primary after its worker exited hold anything', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(10)];
      channel.pause();
      void worker.reserve(rules, costs(rules, 1, true)).catch(() => {});
      await turn(); // the worker has sent its call; it is still in flight
      expect(channel.sent.toPrimary).toHaveLength(1);
      channel.exit();
      channel.resume();
      await turn(); // delivered
      await turn(); // answered (or not: the worker is gone)
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(0);
    });
  });

  describe('errors', () => {
    it('turns a RangeError of the primary’s limiter into a RangeError, failing only that call', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(10)];
      const bad = worker.reserve(rules, { s: { amount: 1.5, hold: true } });
      const good = worker.reserve(rules, costs(rules, 1, true));
      await expect(bad).rejects.toThrow(new RangeError('costs must be non-negative integers'));
      await expect(bad).rejects.toBeInstanceOf(RangeError);
      const decision = await good;
      expect(decision.admitted).toBe(true);
      expect(channel.sent.toPrimary).toHaveLength(1); // both went in one message

      await expect(worker.commit(decision.reservation!, { s: -1 })).rejects.toBeInstanceOf(RangeError);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1); // still held, nothing counted twice
    });

    it('passes other errors on with their message', async () => {
      // The primary's limiter, except that peek fails as a broken database would.
      const failing: Limiter = {
        reserve: (rules, costs) => ctx.limiter.reserve(rules, costs),
        commit: (reservation, actual) => ctx.limiter.commit(reservation, actual),
        release: (reservation) => ctx.limiter.release(reservation),
        peek: () => Promise.reject(new Error('database disk image is malformed')),
        prune: async () => 0,
        close: async () => {},
      };
      const { worker } = connectWorker(failing);
      const peek = worker.peek([hourly(1)]);
      const reserve = worker.reserve([hourly(1)], costs([hourly(1)], 1, false));
      await expect(peek).rejects.toThrow('database disk image is malformed');
      expect((await reserve).admitted).toBe(true);
    });

    it('rejects pending and later calls with a clear error once the primary is gone', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(10)];
      const held = await worker.reserve(rules, costs(rules, 1, true));
      channel.pause(); // the next call never gets an answer
      const pending = worker.reserve(rules, costs(rules, 1, true));
      await turn();
      expect(channel.sent.toPrimary).toHaveLength(2);
      channel.disconnect();
      await expect(pending).rejects.toThrow(/cluster primary.*is gone/);

      const sentBefore = channel.sent.toPrimary.length;
      await expect(worker.reserve(rules, costs(rules, 1, true))).rejects.toThrow(/cluster primary.*is gone/);
      await expect(worker.peek(rules)).rejects.toThrow(/cluster primary.*is gone/);
      await expect(worker.commit(held.reservation!)).rejects.toThrow(/cluster primary.*is gone/);
      await turn();
      expect(channel.sent.toPrimary).toHaveLength(sentBefore);
      expect(channel.sentAfterClose).toBe(0);
    });

    it('rejects calls when there is no IPC channel to send on', async () => {
      const channel = ipcPair();
      const worker = new ClusterLimiter({ on: channel.worker.on.bind(channel.worker) });
      await expect(worker.peek([hourly(1)])).rejects.toThrow('no IPC channel to the cluster primary');
    });
  });

  describe('what sends nothing', () => {
    it('settling a reservation that holds nothing', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(10)];
      const counted = await worker.reserve(rules, costs(rules, 1, false));
      const zero = await worker.reserve(rules, costs(rules, 0, true));
      expect(counted.reservation?.held).toEqual({});
      expect(zero.reservation?.held).toEqual({});
      const sent = channel.sent.toPrimary.length;
      await worker.commit(counted.reservation!);
      await worker.release(counted.reservation!);
      await worker.commit(zero.reservation!, { s: 3 });
      await worker.release(zero.reservation!);
      await turn();
      expect(channel.sent.toPrimary).toHaveLength(sent);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(1);

      // A reservation that does hold something is sent.
      const held = await worker.reserve(rules, costs(rules, 2, true));
      await worker.commit(held.reservation!);
      expect(channel.sent.toPrimary).toHaveLength(sent + 2);
      expect((await ctx.limiter.peek(rules))[0]!.used).toBe(3);
    });

    it('prune (the primary prunes its own limiter) and close', async () => {
      const { worker, channel } = connectWorker();
      const rules = [hourly(10)];
      await worker.reserve(rules, costs(rules, 2, false));
      ctx.now += 2 * HOUR;
      expect(await worker.prune()).toBe(0);
      await worker.close();
      await turn();
      expect(channel.sent.toPrimary).toHaveLength(1);
      // The event is still there for the primary to prune.
      expect(await ctx.limiter.prune(() => HOUR)).toBe(1);
    });
  });
});
