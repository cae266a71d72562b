/**
 * In-memory limiter for a gateway that is the only process counting its database's limits (one
 * worker; see ownership.ts). Every check and reservation is decided in this process's memory,
 * synchronously, so it is exact with no lock and no disk write on the request path. The events
 * are journaled to the same SQLite tables the transactional limiter uses, in one transaction
 * every `flushMs` (50 ms), so windows survive a restart and the data stays readable by the CLI and
 * by a later multi-worker run. A crash forgets at most JOURNAL_LOSS_BOUND_MS (100 ms) of counts:
 * the timer runs at half of it, and a busy event loop that delays the timer is caught by the
 * calls themselves (one that finds the oldest unwritten event `flushMs` old writes the journal).
 *
 * Memory stays small however many events a window holds: per series only the running total, the
 * held amount and, per window length, a cursor at the window's trailing edge with the next few
 * hundred events after it, read from SQLite (plus the not yet journaled tail) when it runs out.
 *
 * Holds live in memory only (a restart ends the calls that held them). One that expires unsettled
 * (`prune` sweeps it) is remembered per series for EXPIRED_HOLD_MEMORY_MS, at most
 * EXPIRED_HOLDS_KEPT per series, so a late commit still counts what its call used. That memory
 * ends with the process too: a reservation id is this instance's, and a limiter started later
 * counts nothing for one of an earlier process (whose calls ended with it).
 */
import { randomBytes } from 'node:crypto';
import { migrateSqliteLimiter } from './sqlite.js';
import { LimiterLease, retryWhileBusy, type LimiterConflictError } from './ownership.js';
import type { Decision, LimitRule, Limiter, Reservation, RuleState, SeriesCost } from '../contract.js';
import { systemClock, type Clock } from './limiter.js';
import { ExpiredHolds } from './expired-holds.js';
import { admittedStates, checkAmounts, judgeRule, refusal, windowBounds, type SeriesView, type WindowBounds } from './window-math.js';
import type { SqliteDatabase } from '../store/sqlite-db.js';

/** The most a crash (kill -9) may forget of what was counted: twice the default flush interval. */
export const JOURNAL_LOSS_BOUND_MS = 100;
const DEFAULT_FLUSH_MS = JOURNAL_LOSS_BOUND_MS / 2;

/** A journal that cannot be written is reported at most this often. */
const ERROR_REPORT_INTERVAL_MS = 60_000;

/** Events read ahead of a window's edge at a time. */
const CURSOR_CHUNK = 256;

interface Event {
  series: string;
  cum: number;
  ts: number;
}

/** A window's trailing edge: the total after the last event outside it, and the events after. */
interface Cursor {
  edgeCum: number;
  /** Time of the event at the edge (-Infinity at the series' base). Valid while `outside` ≥ it. */
  edgeTs: number;
  cums: number[];
  tss: number[];
  /** The first of `cums`/`tss` not yet passed by the edge. */
  next: number;
}

interface SeriesState {
  name: string;
  cum: number;
  lastTs: number;
  held: number;
  /** Total of the events pruned away (the edge of an empty window). */
  baseCum: number;
  /** By window length ('month' for calendar months). */
  cursors: Map<string, Cursor>;
  /** This series' newest event while it is still in the journal. */
  journalTail: Event | null;
}

interface HeldCall {
  amounts: Record<string, number>;
  expiresAt: number;
}

export interface MemoryLimiterOptions {
  /** How often the journal is written to SQLite. */
  flushMs?: number;
  /** Journal writes that fail for any reason but a busy database (they are retried). */
  onError?: (err: unknown) => void;
  /**
   * This process lost its exclusive lease (it stalled past the lease's TTL and another limiter
   * took the file): its counts are no longer the only ones, and it should stop serving.
   */
  onLeaseLost?: (err: LimiterConflictError) => void;
  /** Events `prune` deletes per transaction. */
  pruneChunk?: number;
}

export class MemoryLimiter implements Limiter {
  private readonly series = new Map<string, SeriesState>();
  private readonly holds = new Map<string, HeldCall>();
  /** Holds swept unsettled, for a late commit. */
  private readonly expired = new ExpiredHolds();
  private journal: Event[] = [];
  /** Wall time (Date.now()) when the oldest event not yet written was counted; 0 when none is. */
  private unwrittenSince = 0;
  private readonly flushMs: number;
  private readonly dirty = new Set<SeriesState>();
  /** Reservation ids: unique per limiter instance, so a stale reservation never settles a new one. */
  private readonly holdPrefix = randomBytes(6).toString('hex');
  private holdCounter = 0;
  private readonly lease: LimiterLease;
  private readonly timer: NodeJS.Timeout;
  private readonly onError: (err: unknown) => void;
  /** When a failed journal write was last reported. */
  private lastReported = -Infinity;
  private readonly stmt;
  private readonly writeJournal;
  private readonly pruneChunk: number;
  private readonly pruneChunkTx;

  constructor(
    db: SqliteDatabase,
    private readonly clock: Clock = systemClock,
    /** A hold older than this (a call that never settled) is dropped by `prune`. */
    private readonly holdTtlMs = 15 * 60_000,
    options: MemoryLimiterOptions = {},
  ) {
    retryWhileBusy(() => migrateSqliteLimiter(db));
    this.lease = LimiterLease.claim(db, true, options.onLeaseLost ?? options.onError);
    try {
      // This process is now the only limiter: holds of earlier processes ended with them.
      const clearHolds = db.transaction(() => {
        db.prepare('DELETE FROM limit_holds').run();
        db.prepare('DELETE FROM limit_expired_holds').run();
        db.prepare('UPDATE limit_series SET held = 0 WHERE held != 0').run();
      });
      retryWhileBusy(() => clearHolds.immediate());
    } catch (err) {
      this.lease.release();
      throw err;
    }
    this.onError = options.onError ?? (() => {});
    this.stmt = {
      series: db.prepare<[string], { cum: number; lastTs: number; baseCum: number }>(
        'SELECT cum, last_ts AS lastTs, base_cum AS baseCum FROM limit_series WHERE series = ?',
      ),
      lastAtOrBefore: db.prepare<[string, number], { cum: number; ts: number }>(
        'SELECT cum, ts FROM limit_events WHERE series = ? AND ts <= ? ORDER BY ts DESC, cum DESC LIMIT 1',
      ),
      after: db.prepare<[string, number, number], { cum: number; ts: number }>(
        'SELECT cum, ts FROM limit_events WHERE series = ? AND cum > ? ORDER BY cum LIMIT ?',
      ),
      firstAtLeast: db.prepare<[string, number], { ts: number }>('SELECT ts FROM limit_events WHERE series = ? AND cum >= ? ORDER BY cum LIMIT 1'),
      insertEvent: db.prepare<[string, number, number]>('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)'),
      saveSeries: db.prepare<[string, number, number]>(
        `INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, 0)
         ON CONFLICT (series) DO UPDATE SET cum = excluded.cum, last_ts = excluded.last_ts`,
      ),
      allSeries: db.prepare<[], { series: string }>('SELECT series FROM limit_series'),
      deleteUpTo: db.prepare<[string, number]>('DELETE FROM limit_events WHERE series = ? AND cum <= ?'),
      setBase: db.prepare<[number, string]>('UPDATE limit_series SET base_cum = ? WHERE series = ?'),
      nthCum: db.prepare<[string, number, number], { cum: number }>(
        'SELECT cum FROM limit_events WHERE series = ? AND cum <= ? ORDER BY cum LIMIT 1 OFFSET ?',
      ),
    };
    this.writeJournal = db.transaction((events: readonly Event[], touched: readonly SeriesState[]) => {
      for (const e of events) this.stmt.insertEvent.run(e.series, e.cum, e.ts);
      for (const s of touched) this.stmt.saveSeries.run(s.name, s.cum, s.lastTs);
    });
    this.pruneChunk = options.pruneChunk ?? 10_000;
    this.pruneChunkTx = db.transaction((series: string, edge: number) => {
      // The end of this chunk: the `pruneChunk`-th event from the oldest, or the edge.
      const end = this.stmt.nthCum.get(series, edge, this.pruneChunk - 1)?.cum ?? edge;
      const removed = this.stmt.deleteUpTo.run(series, end).changes;
      if (end === edge) this.stmt.setBase.run(edge, series);
      return { removed, done: end === edge };
    });
    this.flushMs = options.flushMs ?? DEFAULT_FLUSH_MS;
    this.timer = setInterval(() => this.flushQuietly(), this.flushMs);
    this.timer.unref();
  }

  private state(series: string): SeriesState {
    let state = this.series.get(series);
    if (state === undefined) {
      const row = this.stmt.series.get(series);
      state = { name: series, cum: row?.cum ?? 0, lastTs: row?.lastTs ?? 0, held: 0, baseCum: row?.baseCum ?? 0, cursors: new Map(), journalTail: null };
      this.series.set(series, state);
    }
    return state;
  }

  /**
   * Counts an event; timestamps never go backwards within a series. Events of one series in the
   * same millisecond become one journal row (windows cannot tell them apart): under load that
   * writes a row per busy millisecond instead of one per call.
   */
  private append(state: SeriesState, amount: number, now: number): void {
    if (amount <= 0) return;
    if (this.unwrittenSince === 0) this.unwrittenSince = Date.now();
    state.cum += amount;
    state.lastTs = Math.max(now, state.lastTs);
    const tail = state.journalTail;
    if (tail !== null && tail.ts === state.lastTs) {
      tail.cum = state.cum;
    } else {
      state.journalTail = { series: state.name, cum: state.cum, ts: state.lastTs };
      this.journal.push(state.journalTail);
    }
    this.dirty.add(state);
  }

  /** A fresh cursor at the last event at or before `outside`, from SQLite and the journal. */
  private seek(state: SeriesState, outside: number): Cursor {
    const stored = this.stmt.lastAtOrBefore.get(state.name, outside);
    let edgeCum = stored?.cum ?? state.baseCum;
    let edgeTs = stored?.ts ?? -Infinity;
    for (const e of this.journal) {
      if (e.series === state.name && e.ts <= outside && e.cum > edgeCum) {
        edgeCum = e.cum;
        edgeTs = e.ts;
      }
    }
    const cums: number[] = [];
    const tss: number[] = [];
    for (const row of this.stmt.after.all(state.name, edgeCum, CURSOR_CHUNK)) {
      cums.push(row.cum);
      tss.push(row.ts);
    }
    const from = cums.length > 0 ? cums[cums.length - 1]! : edgeCum;
    for (const e of this.journal) {
      if (cums.length >= CURSOR_CHUNK) break;
      if (e.series === state.name && e.cum > from) {
        cums.push(e.cum);
        tss.push(e.ts);
      }
    }
    return { edgeCum, edgeTs, cums, tss, next: 0 };
  }

  /** The series as one window sees it, moving that window's edge up to `bounds.outside`. */
  private view(state: SeriesState, rule: LimitRule, bounds: WindowBounds): SeriesView {
    const key = rule.calendarMonth ? 'month' : String(rule.windowMs);
    const outside = bounds.outside;
    let cursor = state.cursors.get(key);
    if (cursor === undefined || outside < cursor.edgeTs) cursor = this.seek(state, outside);
    while (cursor.next < cursor.cums.length && cursor.tss[cursor.next]! <= outside) {
      cursor.edgeCum = cursor.cums[cursor.next]!;
      cursor.edgeTs = cursor.tss[cursor.next]!;
      cursor.next++;
    }
    // Read ahead ran out while the window still holds events: seek again (also past a long jump).
    if (cursor.next === cursor.cums.length && cursor.edgeCum < state.cum) cursor = this.seek(state, outside);
    state.cursors.set(key, cursor);
    const oldestTs = cursor.next < cursor.cums.length ? cursor.tss[cursor.next] : undefined;
    return { cum: state.cum, held: state.held, edgeCum: cursor.edgeCum, oldestTs };
  }

  /** Time of the first event whose running total reaches `cum` (refusals only). */
  private firstTsAtCum(state: SeriesState, cum: number): number | undefined {
    const stored = this.stmt.firstAtLeast.get(state.name, cum);
    if (stored !== undefined) return stored.ts;
    return this.journal.find((e) => e.series === state.name && e.cum >= cum)?.ts;
  }

  private judge(rule: LimitRule, now: number, cost: number) {
    const state = this.state(rule.series);
    const bounds = windowBounds(rule, now);
    return judgeRule(rule, now, bounds, this.view(state, rule, bounds), cost, (cum) => this.firstTsAtCum(state, cum));
  }

  async reserve(rules: readonly LimitRule[], costs: Readonly<Record<string, SeriesCost>>): Promise<Decision> {
    checkAmounts(
      Object.values(costs).map((c) => c.amount),
      'costs',
    );
    const now = this.clock();
    const judgements = rules.map((rule) => this.judge(rule, now, costs[rule.series]?.amount ?? 0));
    const refused = refusal(rules, judgements);
    if (refused !== null) return refused;

    const states = admittedStates(rules, costs, judgements, now, (series) => this.state(series).lastTs);
    const holds = Object.values(costs).some((c) => c.hold && c.amount > 0);
    const reservation: Reservation = { id: holds ? `${this.holdPrefix}-${++this.holdCounter}` : '', held: {} };
    for (const [series, cost] of Object.entries(costs)) {
      if (cost.amount <= 0) continue;
      const state = this.state(series);
      if (cost.hold) {
        reservation.held[series] = cost.amount;
        state.held += cost.amount;
      } else {
        this.append(state, cost.amount, now);
      }
    }
    if (holds) this.holds.set(reservation.id, { amounts: { ...reservation.held }, expiresAt: now + this.holdTtlMs });
    this.flushIfLate();
    return { admitted: true, states, reservation };
  }

  /** Takes a reservation's holds off their series; null when already settled. */
  private takeHolds(reservation: Reservation): Record<string, number> | null {
    const held = this.holds.get(reservation.id);
    if (held === undefined) return null;
    this.holds.delete(reservation.id);
    for (const [series, amount] of Object.entries(held.amounts)) {
      const state = this.state(series);
      state.held = Math.max(0, state.held - amount);
    }
    return held.amounts;
  }

  async commit(reservation: Reservation, actual: Readonly<Record<string, number>> = {}): Promise<void> {
    checkAmounts(Object.values(actual), 'actual amounts');
    const now = this.clock();
    // Settled in time, or late: its hold expired (it no longer counts) and is only remembered.
    const amounts = this.takeHolds(reservation) ?? this.expired.take(reservation, now);
    for (const [series, amount] of Object.entries(amounts)) this.append(this.state(series), actual[series] ?? amount, now);
    this.flushIfLate();
  }

  /**
   * Part of a held reservation settled (a cluster worker's lease, cluster-leases.ts): `appended`
   * counts at `at` (never before the series' newest event), and `released` comes off the hold. A
   * hold that expired meanwhile counts `appended` all the same, as a late commit would.
   */
  draw(id: string, appended: Readonly<Record<string, number>>, released: Readonly<Record<string, number>>, at: number): void {
    checkAmounts([...Object.values(appended), ...Object.values(released)], 'drawn amounts');
    const held = this.holds.get(id);
    for (const series of Object.keys(released)) {
      const off = Math.min(held?.amounts[series] ?? 0, released[series] ?? 0);
      if (held === undefined || off === 0) continue;
      held.amounts[series]! -= off;
      const state = this.state(series);
      state.held = Math.max(0, state.held - off);
    }
    for (const [series, amount] of Object.entries(appended)) this.append(this.state(series), amount, Math.min(at, this.clock()));
    this.flushIfLate();
  }

  /** Ends a reservation's holds: what they still hold is counted now (`count`), or dropped. */
  endHold(id: string, count: boolean): void {
    const amounts = this.takeHolds({ id, held: {} });
    if (amounts === null || !count) return;
    const now = this.clock();
    for (const [series, amount] of Object.entries(amounts)) this.append(this.state(series), amount, now);
    this.flushIfLate();
  }

  /** Writes the journal now if its oldest event has waited a whole interval (the timer is late). */
  private flushIfLate(): void {
    if (this.unwrittenSince !== 0 && Date.now() - this.unwrittenSince >= this.flushMs) this.flushQuietly();
  }

  async release(reservation: Reservation): Promise<void> {
    if (this.takeHolds(reservation) === null) this.expired.take(reservation, this.clock());
  }

  async peek(rules: readonly LimitRule[]): Promise<RuleState[]> {
    const now = this.clock();
    return rules.map((rule) => this.judge(rule, now, 0).state);
  }

  /** Writes the journal now. Throws what SQLite throws (the journal is kept for the next try). */
  flush(): void {
    if (this.journal.length === 0 && this.dirty.size === 0) return;
    this.writeJournal.immediate(this.journal, [...this.dirty]);
    this.journal = [];
    this.unwrittenSince = 0;
    for (const state of this.dirty) state.journalTail = null;
    this.dirty.clear();
  }

  /**
   * Writes the journal; false only when the database was busy (worth retrying soon). Other
   * failures (a full disk) are reported once a minute while they last, not at every tick; the
   * journal is kept and written once the database takes it again.
   */
  private flushQuietly(): boolean {
    try {
      this.flush();
      this.lastReported = -Infinity;
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_BUSY') return false;
      const now = Date.now();
      if (now - this.lastReported >= ERROR_REPORT_INTERVAL_MS) {
        this.lastReported = now;
        this.onError(err);
      }
    }
    return true;
  }

  async prune(horizonMs: (series: string) => number): Promise<number> {
    const now = this.clock();
    let removed = 0;
    for (const [id, held] of this.holds) {
      if (held.expiresAt > now) continue;
      this.takeHolds({ id, held: held.amounts });
      this.expired.remember(id, held.amounts, held.expiresAt);
      removed += Object.keys(held.amounts).length; // one per series held, as the SQLite limiter counts rows
    }
    this.expired.forget(now);
    this.flush();
    // In chunks, each its own transaction, yielding in between: a day of events under load is
    // hundreds of thousands of rows, which in one go would stall every call for a while.
    for (const { series } of this.stmt.allSeries.all()) {
      const edge = this.stmt.lastAtOrBefore.get(series, now - horizonMs(series))?.cum;
      if (edge === undefined) continue;
      for (;;) {
        const chunk = this.pruneChunkTx.immediate(series, edge);
        removed += chunk.removed;
        if (chunk.done) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const state = this.series.get(series);
      if (state === undefined) continue;
      state.baseCum = edge;
      state.cursors.clear();
    }
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    const giveUpAt = Date.now() + 5_000;
    while (!this.flushQuietly() && Date.now() < giveUpAt) await new Promise((resolve) => setTimeout(resolve, 10));
    this.lease.release();
  }
}
