/**
 * SQLite limiter: exact rolling windows with O(log n) checks.
 *
 * Each series keeps a running cumulative total; every counted event stores the total after it
 * (`cum`), so the sum of a window is `cum(now) - cum(last event at or before now - window)`: two
 * index seeks, whatever the number of events. Events are appended with non-decreasing timestamps,
 * so `cum` is ordered by time too, and "when will enough have expired" is one more seek.
 * Held (in-flight) amounts live in `limit_series.held` and count toward every window until
 * committed or released; one that expires unsettled (a crashed worker's, or a call that outlived
 * `holdTtlMs`) is moved by `prune` to `limit_expired_holds`, where a late commit still finds it for
 * EXPIRED_HOLD_MEMORY_MS (at most EXPIRED_HOLDS_KEPT per series are kept). Check and reserve run
 * in one `BEGIN IMMEDIATE` transaction, which
 * serialises them across connections and processes sharing the file: this is the limiter of
 * PROXYGPT_LIMITER=sqlite, where several gateways count one database together (see memory.ts for
 * the default, and window-math.ts for the arithmetic both share).
 */
import { randomUUID } from 'node:crypto';
import type { SqliteDatabase } from '../store/sqlite-db.js';
import type { Decision, LimitRule, Limiter, Reservation, RuleState, SeriesCost } from '../contract.js';
import { EXPIRED_HOLD_MEMORY_MS, EXPIRED_HOLDS_KEPT, systemClock, type Clock } from './limiter.js';
import { LimiterLease } from './ownership.js';
import { admittedStates, checkAmounts, judgeRule, refusal, windowBounds, type Judgement } from './window-math.js';

interface SeriesRow {
  cum: number;
  lastTs: number;
  held: number;
  baseCum: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS limit_series (
  series TEXT PRIMARY KEY,
  cum INTEGER NOT NULL DEFAULT 0,
  last_ts INTEGER NOT NULL DEFAULT 0,
  held INTEGER NOT NULL DEFAULT 0,
  base_cum INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS limit_events (
  series TEXT NOT NULL,
  cum INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (series, cum)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS limit_events_by_time ON limit_events (series, ts, cum);
CREATE TABLE IF NOT EXISTS limit_holds (
  token TEXT NOT NULL,
  series TEXT NOT NULL,
  amount INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (token, series)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS limit_holds_by_expiry ON limit_holds (expires_at);
CREATE TABLE IF NOT EXISTS limit_expired_holds (
  token TEXT NOT NULL,
  series TEXT NOT NULL,
  amount INTEGER NOT NULL,
  expired_at INTEGER NOT NULL,
  PRIMARY KEY (token, series)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS limit_expired_holds_by_expiry ON limit_expired_holds (expired_at);
CREATE INDEX IF NOT EXISTS limit_expired_holds_by_series ON limit_expired_holds (series, expired_at, token);
`;

/** The table the newest schema added: when it exists, the schema is up to date. */
const NEWEST_TABLE = 'limit_expired_holds';

interface PendingReserve {
  rules: readonly LimitRule[];
  costs: Readonly<Record<string, SeriesCost>>;
  resolve: (decision: Decision) => void;
  reject: (err: unknown) => void;
}

/** After this long waiting for another worker's lock, give up (the request fails with 500). */
const BUSY_GIVE_UP_MS = 10_000;

/** Creates the limiter tables and indexes that do not exist yet (an older database gains the new ones). */
export function migrateSqliteLimiter(db: SqliteDatabase): void {
  db.exec(SCHEMA);
}

export class SqliteLimiter implements Limiter {
  private readonly stmt;
  private readonly reserveTx;
  private pending: PendingReserve[] = [];
  private readonly commitTx;
  private readonly releaseTx;
  private readonly pruneTx;
  private readonly peekTx;
  private readonly lease: LimiterLease;

  constructor(
    db: SqliteDatabase,
    private readonly clock: Clock = systemClock,
    /** A hold older than this (a crashed worker's) is dropped by `prune`. */
    private readonly holdTtlMs = 15 * 60_000,
  ) {
    const migrated = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(NEWEST_TABLE) !== undefined;
    if (!migrated) migrateSqliteLimiter(db);
    this.lease = LimiterLease.claim(db, false);
    this.stmt = {
      series: db.prepare<[string], SeriesRow>(
        'SELECT cum, last_ts AS lastTs, held, base_cum AS baseCum FROM limit_series WHERE series = ?',
      ),
      saveSeries: db.prepare<[string, number, number, number]>(
        `INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, ?)
         ON CONFLICT (series) DO UPDATE SET cum = excluded.cum, last_ts = excluded.last_ts, held = excluded.held`,
      ),
      addHeld: db.prepare<[number, string]>('UPDATE limit_series SET held = max(0, held + ?) WHERE series = ?'),
      cumAtOrBefore: db.prepare<[string, number], { cum: number }>(
        'SELECT cum FROM limit_events WHERE series = ? AND ts <= ? ORDER BY ts DESC, cum DESC LIMIT 1',
      ),
      tsOfFirstCumAtLeast: db.prepare<[string, number], { ts: number }>(
        'SELECT ts FROM limit_events WHERE series = ? AND cum >= ? ORDER BY cum LIMIT 1',
      ),
      insertEvent: db.prepare<[string, number, number]>('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)'),
      insertHold: db.prepare<[string, string, number, number]>(
        'INSERT INTO limit_holds (token, series, amount, expires_at) VALUES (?, ?, ?, ?)',
      ),
      takeHolds: db.prepare<[string], { series: string; amount: number }>(
        'DELETE FROM limit_holds WHERE token = ? RETURNING series, amount',
      ),
      takeExpiredHolds: db.prepare<[number], { token: string; series: string; amount: number; expiresAt: number }>(
        'DELETE FROM limit_holds WHERE expires_at <= ? RETURNING token, series, amount, expires_at AS expiresAt',
      ),
      rememberExpired: db.prepare<[string, string, number, number]>(
        'INSERT OR REPLACE INTO limit_expired_holds (token, series, amount, expired_at) VALUES (?, ?, ?, ?)',
      ),
      takeRemembered: db.prepare<[string], { series: string; amount: number; expiredAt: number }>(
        'DELETE FROM limit_expired_holds WHERE token = ? RETURNING series, amount, expired_at AS expiredAt',
      ),
      forgetExpiredBefore: db.prepare<[number]>('DELETE FROM limit_expired_holds WHERE expired_at <= ?'),
      /** The newest expired hold of a series that is one too many to keep, if any. */
      firstNotKept: db.prepare<[string], { expiredAt: number; token: string }>(
        `SELECT expired_at AS expiredAt, token FROM limit_expired_holds WHERE series = ?
         ORDER BY expired_at DESC, token DESC LIMIT 1 OFFSET ${EXPIRED_HOLDS_KEPT}`,
      ),
      forgetUpTo: db.prepare<[string, number, number, string]>(
        'DELETE FROM limit_expired_holds WHERE series = ? AND (expired_at < ? OR (expired_at = ? AND token <= ?))',
      ),
      allSeries: db.prepare<[], { series: string }>('SELECT series FROM limit_series'),
      deleteEventsUpTo: db.prepare<[string, number]>('DELETE FROM limit_events WHERE series = ? AND cum <= ?'),
      setBase: db.prepare<[number, string]>('UPDATE limit_series SET base_cum = ? WHERE series = ?'),
    };
    this.reserveTx = db.transaction((batch: readonly PendingReserve[], now: number) =>
      batch.map((item) => this.reserveNow(item.rules, item.costs, now)),
    );
    this.commitTx = db.transaction((reservation: Reservation, actual: Readonly<Record<string, number>>, now: number) => {
      for (const hold of this.stmt.takeHolds.all(reservation.id)) {
        this.stmt.addHeld.run(-hold.amount, hold.series);
        this.append(hold.series, actual[hold.series] ?? hold.amount, now);
      }
      // Late: holds that expired unsettled no longer count as held; what the call used still counts.
      for (const hold of this.stmt.takeRemembered.all(reservation.id)) {
        if (hold.expiredAt > now - EXPIRED_HOLD_MEMORY_MS) this.append(hold.series, actual[hold.series] ?? hold.amount, now);
      }
    });
    this.releaseTx = db.transaction((reservation: Reservation) => {
      for (const hold of this.stmt.takeHolds.all(reservation.id)) this.stmt.addHeld.run(-hold.amount, hold.series);
      this.stmt.takeRemembered.all(reservation.id);
    });
    this.peekTx = db.transaction((rules: readonly LimitRule[], now: number) =>
      rules.map((rule): RuleState => this.evaluate(rule, this.seriesRow(rule.series), now, 0).state),
    );
    this.pruneTx = db.transaction((now: number, horizonMs: (series: string) => number) => {
      let removed = 0;
      const swept = new Set<string>();
      for (const hold of this.stmt.takeExpiredHolds.all(now)) {
        this.stmt.addHeld.run(-hold.amount, hold.series);
        this.stmt.rememberExpired.run(hold.token, hold.series, hold.amount, hold.expiresAt);
        swept.add(hold.series);
        removed++;
      }
      // What is remembered for late commits is bounded: by time, and per series by number.
      this.stmt.forgetExpiredBefore.run(now - EXPIRED_HOLD_MEMORY_MS);
      for (const series of swept) {
        const edge = this.stmt.firstNotKept.get(series);
        if (edge !== undefined) this.stmt.forgetUpTo.run(series, edge.expiredAt, edge.expiredAt, edge.token);
      }
      for (const { series } of this.stmt.allSeries.all()) {
        const edge = this.stmt.cumAtOrBefore.get(series, now - horizonMs(series));
        if (edge === undefined) continue;
        removed += this.stmt.deleteEventsUpTo.run(series, edge.cum).changes;
        this.stmt.setBase.run(edge.cum, series);
      }
      return removed;
    });
  }

  private seriesRow(series: string): SeriesRow {
    return this.stmt.series.get(series) ?? { cum: 0, lastTs: 0, held: 0, baseCum: 0 };
  }

  /** Appends a counted event; timestamps never go backwards within a series. */
  private append(series: string, amount: number, now: number, row: SeriesRow = this.seriesRow(series)): void {
    if (amount <= 0) return;
    const ts = Math.max(now, row.lastTs);
    const cum = row.cum + amount;
    this.stmt.insertEvent.run(series, cum, ts);
    this.stmt.saveSeries.run(series, cum, ts, row.held);
  }

  /** One rule at `now`, judged against `cost` more. */
  private evaluate(rule: LimitRule, row: SeriesRow, now: number, cost: number): Judgement {
    const bounds = windowBounds(rule, now);
    const edgeCum = this.stmt.cumAtOrBefore.get(rule.series, bounds.outside)?.cum ?? row.baseCum;
    const oldestTs = row.cum > edgeCum ? this.stmt.tsOfFirstCumAtLeast.get(rule.series, edgeCum + 1)?.ts : undefined;
    const view = { cum: row.cum, held: row.held, edgeCum, oldestTs };
    return judgeRule(rule, now, bounds, view, cost, (cum) => this.stmt.tsOfFirstCumAtLeast.get(rule.series, cum)?.ts);
  }

  private reserveNow(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>, now: number): Decision {
    const rows = new Map<string, SeriesRow>();
    for (const series of Object.keys(costs)) rows.set(series, this.seriesRow(series));
    for (const rule of rules) if (!rows.has(rule.series)) rows.set(rule.series, this.seriesRow(rule.series));

    const judgements = rules.map((rule) => this.evaluate(rule, rows.get(rule.series)!, now, costs[rule.series]?.amount ?? 0));
    const refused = refusal(rules, judgements);
    if (refused !== null) return refused;

    // Only held amounts are looked up again (by this id); a reservation that holds nothing needs none.
    const holds = Object.values(costs).some((c) => c.hold && c.amount > 0);
    const reservation: Reservation = { id: holds ? randomUUID() : '', held: {} };
    for (const [series, cost] of Object.entries(costs)) {
      if (cost.amount <= 0) continue;
      const row = rows.get(series)!;
      if (cost.hold) {
        reservation.held[series] = cost.amount;
        this.stmt.insertHold.run(reservation.id, series, cost.amount, now + this.holdTtlMs);
        this.stmt.saveSeries.run(series, row.cum, row.lastTs, row.held + cost.amount);
      } else {
        this.append(series, cost.amount, now, row);
      }
    }
    const states = admittedStates(rules, costs, judgements, now, (series) => rows.get(series)!.lastTs);
    return { admitted: true, states, reservation };
  }

  /**
   * Runs one transaction, retrying while another connection (another worker) holds the write
   * lock. The wait yields to the event loop instead of sleeping inside SQLite, so other requests
   * of this worker go on, and the retry comes microseconds after the lock is free rather than a
   * millisecond or more later. The time is read on each attempt, so a retried check is exact too.
   */
  private async run<T>(step: (now: number) => T): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return step(this.clock());
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() - started > BUSY_GIVE_UP_MS) throw err;
        await (attempt < 50 ? new Promise((resolve) => setImmediate(resolve)) : new Promise((resolve) => setTimeout(resolve, 1)));
      }
    }
  }

  /**
   * Reservations that arrive in the same turn of the event loop share one transaction (one lock,
   * one WAL commit). Inside it each is checked and reserved in arrival order against the counts
   * the earlier ones left, exactly as if each had its own transaction.
   */
  reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision> {
    try {
      checkAmounts(Object.values(costs).map((c) => c.amount), 'costs');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ rules, costs, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => void this.flushReserves());
    });
  }

  private async flushReserves(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      const decisions = await this.run((now) => this.reserveTx.immediate(batch, now));
      decisions.forEach((decision, i) => batch[i]!.resolve(decision));
    } catch (err) {
      for (const item of batch) item.reject(err);
    }
  }

  async commit(reservation: Reservation, actual: Readonly<Record<string, number>> = {}): Promise<void> {
    checkAmounts(Object.values(actual), 'actual amounts');
    if (Object.keys(reservation.held).length > 0) await this.run((now) => this.commitTx.immediate(reservation, actual, now));
  }

  async release(reservation: Reservation): Promise<void> {
    if (Object.keys(reservation.held).length > 0) await this.run(() => this.releaseTx.immediate(reservation));
  }

  async peek(rules: readonly LimitRule[]): Promise<RuleState[]> {
    return this.run((now) => this.peekTx(rules, now));
  }

  async prune(horizonMs: (series: string) => number): Promise<number> {
    return this.run((now) => this.pruneTx.immediate(now, horizonMs));
  }

  async close(): Promise<void> {
    // The database connection belongs to whoever opened it.
    this.lease.release();
  }
}
