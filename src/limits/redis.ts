/**
 * Redis limiter: the limits of several gateway instances kept together, exactly, in one Redis.
 * It keeps the SQLite limiter's model (sqlite.ts): per series a running total, every counted
 * event stored with the total after it, a window's sum the difference of two seeks, holds
 * counting toward every window until settled. Each operation (reserve, commit, release, peek) is
 * one Lua script (redis-scripts.ts), atomic on the server and one round trip for all the rules of
 * a call; the script makes the decision to admit, and this side turns the totals it returns into
 * the same RuleStates, refusals and Retry-After as every other limiter (window-math.ts).
 *
 * Time: by default the Redis server's clock (TIME inside the script), one clock for every
 * instance; `clock` (tests) sends the caller's time instead. Holds expire by themselves after
 * `holdTtlMs` (a crashed instance's too): every script drops the expired holds of the series it
 * touches before judging, and remembers them for a late commit (a call that outlived its hold
 * still counts what it used; see redis-scripts.ts). Keys expire by themselves a horizon after their last write, and events
 * past the horizon are trimmed on write, so `prune` is only needed for series nobody writes any
 * more: it walks the series with SCAN and trims each (see `prune`).
 */
import { randomBytes } from 'node:crypto';
import { EXPIRED_HOLD_MEMORY_MS, type Clock, type Decision, type LimitRule, type Limiter, type Reservation, type RuleState, type SeriesCost } from './limiter.js';
import { admittedStates, checkAmounts, judgeRule, refusal, windowBounds, type Judgement } from './window-math.js';
import { LimiterUnavailable, RedisConnection } from './redis-connection.js';
import { PRUNE_LUA, RESERVE_LUA, SETTLE_LUA, seriesKeys, STATE_KEY_TAG } from './redis-scripts.js';

export { LimiterUnavailable } from './redis-connection.js';

const DAY_MS = 86_400_000;
/** The longest a calendar month can be: what a month rule may see. */
const LONGEST_MONTH_MS = 31 * DAY_MS;
/** Default horizon: longer than any window the gateway builds (hour, day, calendar month). */
export const DEFAULT_HORIZON_MS = 32 * DAY_MS;
/** Series pruned per script. */
const PRUNE_BATCH = 100;

export interface RedisLimiterOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS): one Redis server (not Redis Cluster). */
  url: string;
  /**
   * Prepended to every key, so several gateways (or tests) share one Redis. Default `proxygpt:`.
   * Gateways that count together use the same prefix; others use prefixes that are not the
   * start of one another's `<prefix>s:` (e.g. `team-a:` and `team-b:`, not `a:` and `a:s:`).
   */
  prefix?: string;
  /** The time to judge at; default: the Redis server's clock. */
  clock?: Clock;
  /** A hold not settled within this long (its instance crashed) ends by itself. Default 15 min. */
  holdTtlMs?: number;
  /** Longest any call may take, waiting for a connection included. Default 500 ms. */
  timeoutMs?: number;
  /**
   * How long a series' events must be kept: at least its longest window (a calendar month can be
   * 31 days). Default 32 days for every series. Events older are trimmed on write, and a series'
   * keys expire this long after its last write. A reserve never trims what one of its own rules
   * can see, whatever this says.
   */
  horizonMs?: (series: string) => number;
  /** Redis lost or refused: called once per outage. */
  onError?: (err: LimiterUnavailable) => void;
}

type ScriptCall = (numberOfKeys: number, ...args: string[]) => Promise<unknown>;

/** Numbers the reserve script returns per rule and per series. */
const PER_RULE = 5;
const PER_SERIES = 3;

export class RedisLimiter implements Limiter {
  private readonly connection: RedisConnection;
  private readonly prefix: string;
  private readonly clock: Clock | undefined;
  private readonly holdTtlMs: number;
  private readonly horizonMs: (series: string) => number;
  /** Hold ids: unique per limiter instance across all instances sharing the Redis. */
  private readonly instanceId = randomBytes(8).toString('hex');
  private holdCounter = 0;
  private readonly scripts: { reserve: ScriptCall; settle: ScriptCall; prune: ScriptCall };

  constructor(options: RedisLimiterOptions) {
    this.prefix = options.prefix ?? 'proxygpt:';
    this.clock = options.clock;
    this.holdTtlMs = options.holdTtlMs ?? 15 * 60_000;
    this.horizonMs = options.horizonMs ?? (() => DEFAULT_HORIZON_MS);
    this.connection = new RedisConnection({ url: options.url, timeoutMs: options.timeoutMs ?? 500, onError: options.onError });
    const client = this.connection.client;
    // defineCommand: EVALSHA, falling back to EVAL once per connection when the server lacks the script.
    client.defineCommand('proxygptReserve', { lua: RESERVE_LUA });
    client.defineCommand('proxygptSettle', { lua: SETTLE_LUA });
    client.defineCommand('proxygptPrune', { lua: PRUNE_LUA });
    const bound = client as unknown as Record<string, ScriptCall>;
    this.scripts = {
      reserve: bound.proxygptReserve!.bind(client),
      settle: bound.proxygptSettle!.bind(client),
      prune: bound.proxygptPrune!.bind(client),
    };
  }

  /** The injected clock's time, or '' for the server's. */
  private now(): string {
    return this.clock === undefined ? '' : String(this.clock());
  }

  /**
   * How long a series' keys must outlive a write: its horizon, or if longer a hold's lifetime and
   * the time an expired hold is remembered after it (for a late commit).
   */
  private keyTtl(horizon: number): string {
    return String(Math.max(horizon, this.holdTtlMs + EXPIRED_HOLD_MEMORY_MS));
  }

  reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision> {
    try {
      checkAmounts(Object.values(costs).map((c) => c.amount), 'costs');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.judge(rules, costs);
  }

  async peek(rules: readonly LimitRule[]): Promise<RuleState[]> {
    return (await this.judge(rules, {})).states;
  }

  /** One reserve script: with no costs it reserves nothing and only reports (peek). */
  private async judge(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision> {
    const series = [...new Set([...Object.keys(costs), ...rules.map((r) => r.series)])];
    const index = new Map(series.map((s, i) => [s, i]));
    const horizons = series.map((s) => this.horizonMs(s));
    for (const rule of rules) {
      const i = index.get(rule.series)!;
      horizons[i] = Math.max(horizons[i]!, rule.calendarMonth ? LONGEST_MONTH_MS : rule.windowMs);
    }
    const holds = Object.values(costs).some((c) => c.hold && c.amount > 0);
    const id = holds ? `${this.instanceId}-${(++this.holdCounter).toString(36)}` : '';

    const keys: string[] = [];
    const args: string[] = [this.now(), String(this.holdTtlMs), id, String(series.length)];
    series.forEach((s, i) => {
      keys.push(...seriesKeys(this.prefix, s));
      const cost = costs[s];
      args.push(String(cost?.amount ?? 0), cost?.hold ? '1' : '0', String(horizons[i]), this.keyTtl(horizons[i]!));
    });
    args.push(String(rules.length));
    for (const rule of rules) args.push(String(index.get(rule.series)! + 1), String(rule.limit), String(rule.windowMs), rule.calendarMonth ? '1' : '0');

    const out = (await this.connection.run(() => this.scripts.reserve(keys.length, ...keys, ...args))) as number[];
    const now = out[0]!;
    const admittedByScript = out[1] === 1;
    const seriesAt = (i: number) => {
      const at = 2 + rules.length * PER_RULE + i * PER_SERIES;
      return { cum: out[at]!, held: out[at + 1]!, lastTs: out[at + 2]! };
    };
    const judgements: Judgement[] = rules.map((rule, r) => {
      const at = 2 + r * PER_RULE;
      const s = seriesAt(index.get(rule.series)!);
      const view = { cum: s.cum, held: s.held, edgeCum: out[at]!, oldestTs: out[at + 1] === 1 ? out[at + 2] : undefined };
      const retryTs = out[at + 3] === 1 ? out[at + 4] : undefined;
      return judgeRule(rule, now, windowBounds(rule, now), view, costs[rule.series]?.amount ?? 0, () => retryTs);
    });

    const refused = refusal(rules, judgements);
    if ((refused === null) !== admittedByScript) throw new Error('Redis limiter: the script and the window arithmetic disagree');
    if (refused !== null) return refused;
    const reservation: Reservation = { id, held: {} };
    for (const [s, cost] of Object.entries(costs)) if (cost.hold && cost.amount > 0) reservation.held[s] = cost.amount;
    const states = admittedStates(rules, costs, judgements, now, (s) => seriesAt(index.get(s)!).lastTs);
    return { admitted: true, states, reservation };
  }

  async commit(reservation: Reservation, actual: Readonly<Record<string, number>> = {}): Promise<void> {
    checkAmounts(Object.values(actual), 'actual amounts');
    await this.settle(reservation, true, actual);
  }

  async release(reservation: Reservation): Promise<void> {
    await this.settle(reservation, false, {});
  }

  /** Settles the holds stored under the reservation's id (their stored amounts, not the caller's copy). */
  private async settle(reservation: Reservation, commit: boolean, actual: Readonly<Record<string, number>>): Promise<void> {
    const series = Object.keys(reservation.held);
    if (series.length === 0) return;
    const keys: string[] = [];
    const args = [this.now(), reservation.id, commit ? '1' : '0'];
    for (const s of series) {
      keys.push(...seriesKeys(this.prefix, s));
      const horizon = this.horizonMs(s);
      args.push(String(actual[s] ?? -1), String(horizon), this.keyTtl(horizon));
    }
    await this.connection.run(() => this.scripts.settle(keys.length, ...keys, ...args));
  }

  /**
   * A SCAN over this prefix's series: drops expired holds and trims events older than
   * `horizonMs(series)` in series nobody has written lately (writes trim their own series, and
   * idle keys expire by themselves, so this is upkeep, not needed for exact answers). Returns
   * the stored events (one per series and millisecond) and holds removed. Each step is bounded
   * by the timeout; the walk as a whole is not.
   */
  async prune(horizonMs: (series: string) => number): Promise<number> {
    const now = this.now();
    const statePrefix = `${this.prefix}${STATE_KEY_TAG}`;
    const pattern = `${statePrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let removed = 0;
    let cursor = '0';
    do {
      const [next, found] = await this.connection.run(() => this.connection.client.scan(cursor, 'MATCH', pattern, 'COUNT', 500));
      cursor = next;
      for (let i = 0; i < found.length; i += PRUNE_BATCH) {
        const series = found.slice(i, i + PRUNE_BATCH).map((key) => key.slice(statePrefix.length));
        const keys = series.flatMap((s) => seriesKeys(this.prefix, s));
        const args = [now, ...series.map((s) => String(horizonMs(s)))];
        for (;;) {
          const [count, more] = (await this.connection.run(() => this.scripts.prune(keys.length, ...keys, ...args))) as [number, number];
          removed += count;
          if (more !== 1) break;
        }
      }
    } while (cursor !== '0');
    return removed;
  }

  /** Resolves when Redis answers within the timeout (readiness); rejects with LimiterUnavailable otherwise. */
  async ping(): Promise<void> {
    await this.connection.run(() => this.connection.client.ping());
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
