/**
 * Limits for a cluster of worker processes (PROXYGPT_WORKERS > 1): the primary process keeps the
 * one MemoryLimiter and decides for every worker, so limits stay exact across them with no lock
 * and no disk write per call; workers ask over the cluster's IPC channel. A worker's calls travel
 * in batches, one message each way, and a worker has at most one batch at the primary at a time:
 * calls made while it is out wait for its answer and then go together. An idle worker's call
 * leaves at the end of its event-loop turn as before; a busy one sends few large messages instead
 * of one per turn, and each message costs a system call and a wake-up on both ends, the most of
 * what the IPC costs (its JSON is a small part); a caller's rules go over once and by number
 * after that (RulesRef). When a worker dies, the primary drops the holds of its calls in flight at
 * once (and forgets those that had expired). A commit that comes after its hold expired is the
 * primary's limiter's to count (a late commit). A busy worker asks per call only until it holds a
 * lease on its caller's rules (cluster-leases.ts: a block of room the primary holds for it while
 * there is ample; the worker admits calls from it and reports what they counted a few ms later;
 * lease-book.ts is the primary's end).
 * This module is the IPC protocol (both ends); cluster-primary.ts builds the primary's limiter.
 */
import type { Decision, LimitRule, Limiter, Reservation, RuleState, SeriesCost } from '../contract.js';
import { LEASE_CALLS, leasable, WorkerLeases, type LeaseDraw, type LeaseGrant } from './cluster-leases.js';
import { canLease, LeaseBook } from './lease-book.js';
import { systemClock, type Clock } from './limiter.js';
import { checkAmounts } from './window-math.js';

/**
 * The rules of a reserve or peek: inline, or by the number of a rule set this worker sent before
 * (`rules` present: remember it under `rulesId`; absent: use the one remembered). A worker sends a
 * rule set once only when the array is frozen (CallLimits' plans are: one per caller and version
 * of its key), so that it cannot change after it was sent; any other array goes inline every time.
 */
type RulesRef = { rules: readonly LimitRule[]; rulesId?: number } | { rules?: undefined; rulesId: number };

type Call =
  | ({ op: 'reserve'; costs: Readonly<Record<string, SeriesCost>> } & RulesRef)
  | { op: 'commit'; reservation: Reservation; actual: Readonly<Record<string, number>> }
  | { op: 'release'; reservation: Reservation }
  | ({ op: 'peek' } & RulesRef)
  /** A lease of `calls` calls like this one (answered with a LeaseGrant or null). */
  | ({ op: 'lease'; costs: Readonly<Record<string, SeriesCost>>; calls: number } & RulesRef)
  /** What calls admitted from a lease counted (sent with `reply: false`). */
  | ({ op: 'draw' } & LeaseDraw)
  /** The worker starts numbering its rule sets again: the primary forgets the ones it kept. */
  | { op: 'forgetRules' };

/** Rule sets a worker has sent by number before it starts again (bounds what the primary keeps). */
export const RULE_SETS_KEPT = 10_000;

type Outcome = { id: number; ok: true; value: unknown } | { id: number; ok: false; name: string; message: string };

interface CallsMessage {
  proxygptLimiter: 'calls';
  calls: (Call & { id: number })[];
  /** false: the worker waits for no answer (lease reports). */
  reply?: false;
}
/** The primary calls these leases of the worker back (it would otherwise refuse a call). */
interface RecallMessage {
  proxygptLimiter: 'recall';
  leaseIds: string[];
}
interface OutcomesMessage {
  proxygptLimiter: 'outcomes';
  outcomes: Outcome[];
}

const isCalls = (m: unknown): m is CallsMessage => (m as CallsMessage | null)?.proxygptLimiter === 'calls';
const isOutcomes = (m: unknown): m is OutcomesMessage => (m as OutcomesMessage | null)?.proxygptLimiter === 'outcomes';
const isRecall = (m: unknown): m is RecallMessage => (m as RecallMessage | null)?.proxygptLimiter === 'recall';

/** The primary's end of one worker's channel (a cluster `Worker`). */
export interface WorkerChannel {
  send(message: unknown): boolean;
  isConnected(): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit', listener: () => void): unknown;
}

/** The channel a worker talks to the primary through (`process` in a cluster worker). */
export interface PrimaryChannel {
  send?(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
}

/** Worker side: every Limiter call is answered by the primary's limiter. */
export class ClusterLimiter implements Limiter {
  private nextId = 0;
  private queued: (Call & { id: number })[] = [];
  private readonly waiting = new Map<number, { resolve: (value: never) => void; reject: (err: Error) => void }>();
  private gone: Error | null = null;
  /** A batch is at the primary: further calls queue until its answer comes. */
  private awaitingPrimary = false;
  /** Frozen rule sets sent to the primary, by number (see RulesRef). */
  private ruleSets = new WeakMap<readonly LimitRule[], number>();
  private ruleSetsSent = 0;
  /** Leases on this worker's callers' rules; null when leasing is off. */
  private readonly leases: WorkerLeases | null;

  constructor(
    private readonly channel: PrimaryChannel,
    options: { clock?: Clock; leases?: boolean } = {},
  ) {
    this.leases = options.leases === false ? null : new WorkerLeases(options.clock ?? systemClock, (draws) => this.sendDraws(draws));
    channel.on('message', (message) => {
      if (isRecall(message)) return this.leases?.recall(message.leaseIds);
      if (!isOutcomes(message)) return;
      this.awaitingPrimary = false;
      if (this.queued.length > 0) this.sendQueued();
      for (const outcome of message.outcomes) {
        const waiter = this.waiting.get(outcome.id);
        if (waiter === undefined) continue;
        this.waiting.delete(outcome.id);
        if (outcome.ok) waiter.resolve((outcome.value ?? undefined) as never);
        else waiter.reject(outcome.name === 'RangeError' ? new RangeError(outcome.message) : new Error(outcome.message));
      }
    });
    channel.on('disconnect', () => this.fail(new Error('the cluster primary, which keeps the limits, is gone')));
  }

  private fail(err: Error): void {
    this.gone = err;
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }

  private call<T>(call: Call): Promise<T> {
    if (this.gone !== null) return Promise.reject(this.gone);
    const id = this.nextId++;
    this.queued.push({ ...call, id });
    if (this.queued.length === 1 && !this.awaitingPrimary) setImmediate(() => this.sendQueued());
    return new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  private sendQueued(): void {
    if (this.awaitingPrimary || this.queued.length === 0) return;
    const calls = this.queued;
    this.queued = [];
    try {
      if (this.gone !== null) throw this.gone;
      if (this.channel.send?.({ proxygptLimiter: 'calls', calls } satisfies CallsMessage) === undefined) throw new Error('no IPC channel to the cluster primary');
      this.awaitingPrimary = true;
    } catch (err) {
      // The rule sets of this batch may not have arrived: send every set again from now on.
      this.ruleSets = new WeakMap();
      for (const call of calls) {
        this.waiting.get(call.id)?.reject(err as Error);
        this.waiting.delete(call.id);
      }
    }
  }

  /** The rules as this worker sends them: a number for a frozen set already sent, else the set. */
  private refer(rules: readonly LimitRule[]): RulesRef {
    if (!Object.isFrozen(rules)) return { rules };
    const known = this.ruleSets.get(rules);
    if (known !== undefined) return { rulesId: known };
    if (this.ruleSetsSent >= RULE_SETS_KEPT) {
      // Leases go by rule set number too: given back before the numbers mean other sets.
      this.leases?.forgetRuleSets();
      void this.call({ op: 'forgetRules' }).catch(() => undefined);
      this.ruleSets = new WeakMap();
      this.ruleSetsSent = 0;
    }
    const rulesId = this.ruleSetsSent++;
    this.ruleSets.set(rules, rulesId);
    return { rules, rulesId };
  }

  /** Lease reports, in a message of their own that waits for no answer (and for no batch). */
  private sendDraws(draws: LeaseDraw[]): void {
    if (this.gone !== null) return;
    try {
      this.channel.send?.({ proxygptLimiter: 'calls', calls: draws.map((draw) => ({ op: 'draw', ...draw, id: this.nextId++ })), reply: false } satisfies CallsMessage);
    } catch {
      // The channel is closing: the primary counts what this worker's leases held (ownerGone).
    }
  }

  reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision> {
    const ref = this.refer(rules);
    const rulesId = ref.rulesId;
    if (this.leases === null || rulesId === undefined || this.gone !== null || !leasable(rules)) return this.call({ op: 'reserve', ...ref, costs });
    try {
      checkAmounts(Object.values(costs).map((c) => c.amount), 'costs');
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const local = this.leases.admit(rulesId, costs);
    const decision = local !== null ? Promise.resolve(local) : this.call<Decision>({ op: 'reserve', ...ref, costs });
    if (this.leases.shouldAsk(rulesId)) {
      const leases = this.leases;
      const epoch = leases.asked(rulesId);
      this.call<LeaseGrant | null>({ op: 'lease', rulesId, costs, calls: LEASE_CALLS }).then(
        (grant) => leases.granted(rulesId, rules, grant, epoch),
        () => leases.granted(rulesId, rules, null, epoch),
      );
    }
    return decision;
  }

  commit(reservation: Reservation, actual: Readonly<Record<string, number>> = {}): Promise<void> {
    if (Object.keys(reservation.held).length === 0) return Promise.resolve();
    try {
      checkAmounts(Object.values(actual), 'actual amounts');
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (this.leases?.commit(reservation, actual) === true) return Promise.resolve();
    return this.call({ op: 'commit', reservation, actual });
  }

  release(reservation: Reservation): Promise<void> {
    if (Object.keys(reservation.held).length === 0) return Promise.resolve();
    if (this.leases?.release(reservation) === true) return Promise.resolve();
    return this.call({ op: 'release', reservation });
  }

  peek(rules: readonly LimitRule[]): Promise<RuleState[]> {
    return this.call({ op: 'peek', ...this.refer(rules) });
  }

  /** The primary prunes its own limiter on a timer. */
  async prune(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    // What its leases counted is reported; the primary drops this worker's other holds when it exits.
    this.leases?.close();
  }
}

/** The primary's leases, one book per limiter for all its workers (null: the limiter cannot lease). */
const books = new WeakMap<Limiter, LeaseBook | null>();
function bookOf(limiter: Limiter): LeaseBook | null {
  if (!books.has(limiter)) books.set(limiter, canLease(limiter) ? new LeaseBook(limiter) : null);
  return books.get(limiter)!;
}

/** Tells a worker to give these leases back. */
function recallFrom(owner: object, leaseIds: string[]): void {
  const worker = owner as WorkerChannel;
  if (worker.isConnected()) worker.send({ proxygptLimiter: 'recall', leaseIds } satisfies RecallMessage);
}

/**
 * Primary side: answers the limiter calls of `worker` with `limiter`, in order, and releases the
 * holds of its unsettled calls when it exits (what its leases held counts as used).
 */
export function serveLimiter(limiter: Limiter, worker: WorkerChannel): void {
  const book = bookOf(limiter);
  const held = new Map<string, Reservation>();
  const ruleSets = new Map<number, readonly LimitRule[]>();
  /** Runs in message order (before any await), so a set is kept before a later call names it. */
  const rulesOf = (ref: RulesRef): readonly LimitRule[] => {
    if (ref.rules !== undefined) {
      if (ref.rulesId !== undefined) ruleSets.set(ref.rulesId, ref.rules);
      return ref.rules;
    }
    const known = ruleSets.get(ref.rulesId);
    if (known === undefined) throw new Error(`the cluster primary has no rule set ${ref.rulesId} of this worker`);
    return known;
  };
  const run = async (call: Call): Promise<unknown> => {
    switch (call.op) {
      case 'reserve': {
        const rules = rulesOf(call);
        const decision = book === null ? await limiter.reserve(rules, call.costs) : await book.reserve(rules, call.costs, recallFrom);
        const reservation = decision.reservation;
        if (reservation !== undefined && Object.keys(reservation.held).length > 0) held.set(reservation.id, reservation);
        return decision;
      }
      case 'commit':
        held.delete(call.reservation.id);
        return limiter.commit(call.reservation, call.actual);
      case 'release':
        held.delete(call.reservation.id);
        return limiter.release(call.reservation);
      case 'peek':
        return limiter.peek(rulesOf(call));
      case 'forgetRules':
        ruleSets.clear();
        return null;
      case 'lease': {
        const rules = rulesOf(call);
        return book === null ? null : book.grant(worker, rules, call.costs, call.calls);
      }
      case 'draw':
        book?.draw(worker, call);
        return null;
    }
  };
  let exited = false;
  worker.on('message', (message: unknown) => {
    // A message can still arrive after its worker exited: nobody waits for its answers any more.
    if (!isCalls(message) || exited) return;
    if (message.reply === false) {
      for (const call of message.calls) void run(call).catch(() => undefined);
      return;
    }
    void Promise.all(
      message.calls.map((call) =>
        run(call).then(
          (value): Outcome => ({ id: call.id, ok: true, value: value ?? null }),
          (err: Error): Outcome => ({ id: call.id, ok: false, name: err.name, message: err.message }),
        ),
      ),
    ).then((outcomes) => {
      if (!worker.isConnected()) return;
      // A lease is given only as its answer leaves: until then the book may withdraw it.
      message.calls.forEach((call, i) => {
        const outcome = outcomes[i]!;
        if (call.op === 'lease' && outcome.ok && book !== null) outcome.value = book.deliver(outcome.value as LeaseGrant | null);
      });
      worker.send({ proxygptLimiter: 'outcomes', outcomes } satisfies OutcomesMessage);
    });
  });
  worker.on('exit', () => {
    exited = true;
    book?.ownerGone(worker);
    for (const reservation of held.values()) void limiter.release(reservation);
    held.clear();
  });
}
