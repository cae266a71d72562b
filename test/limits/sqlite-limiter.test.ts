/**
 * SqliteLimiter on a real SQLite file with an injected clock: exact rolling windows, several rules
 * on one series, exact Retry-After, hold/commit/release, pruning, index use (no scans), and two
 * connections to one file agreeing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import type { LimitRule, Reservation, RuleState, SeriesCost } from '../../src/limits/limiter.js';
import { tempDir } from '../helpers.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = 1_700_000_000_000;

let dir: string;
let db: SqliteDatabase;
let now: number;
const clock = () => now;
let limiter: SqliteLimiter;

const hourly = (limit: number, series = 's'): LimitRule => ({ name: 'hourly', series, unit: 'requests', windowMs: HOUR, limit });
const daily = (limit: number, series = 's'): LimitRule => ({ name: 'daily', series, unit: 'requests', windowMs: DAY, limit });

/** The same cost in every series the rules name. */
const costs = (rules: LimitRule[], amount: number, held: boolean): Record<string, SeriesCost> =>
  Object.fromEntries(rules.map((r) => [r.series, { amount, hold: held }]));
const take = (rules: LimitRule[], cost = 1) => limiter.reserve(rules, costs(rules, cost, false));
const hold = (rules: LimitRule[], cost = 1) => limiter.reserve(rules, costs(rules, cost, true));
const byName = (states: RuleState[], name: string) => states.find((s) => s.name === name)!;

/** Reserve one at each of these times (ms after T0), expecting admission. */
async function fillAt(rules: LimitRule[], offsets: number[]): Promise<void> {
  for (const offset of offsets) {
    now = T0 + offset;
    const decision = await take(rules);
    expect(decision.admitted).toBe(true);
  }
}

beforeEach(() => {
  dir = tempDir();
  db = openSqlite(join(dir, 'limits.db'));
  now = T0;
  limiter = new SqliteLimiter(db, clock);
});

afterEach(async () => {
  await limiter.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('rolling windows', () => {
  it('counts an event until exactly t + window, then lets it leave', async () => {
    const rules = [hourly(1)];
    await fillAt(rules, [0]);

    now = T0 + HOUR - 1;
    expect((await limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 0, resetMs: 1 });
    const blocked = await take(rules);
    expect(blocked.admitted).toBe(false);
    expect(blocked.retryAfterMs).toBe(1);

    now = T0 + HOUR;
    expect((await limiter.peek(rules))[0]).toMatchObject({ used: 0, remaining: 1, resetMs: 0 });
    expect((await take(rules)).admitted).toBe(true);
  });

  it('counts one event in both the hourly and the daily rule of one series', async () => {
    const rules = [hourly(10), daily(100)];
    await fillAt(rules, [0, 1000, 2000]);
    const states = await limiter.peek(rules);
    expect(byName(states, 'hourly')).toMatchObject({ used: 3, remaining: 7 });
    expect(byName(states, 'daily')).toMatchObject({ used: 3, remaining: 97 });

    // Two hours later the hourly window is empty, the daily one still holds all three.
    now = T0 + 2 * HOUR;
    const later = await limiter.peek(rules);
    expect(byName(later, 'hourly')).toMatchObject({ used: 0, remaining: 10, resetMs: 0 });
    expect(byName(later, 'daily')).toMatchObject({ used: 3, remaining: 97, resetMs: DAY - 2 * HOUR });
  });

  it('keeps series apart', async () => {
    await fillAt([hourly(2, 'a')], [0, 1]);
    expect((await take([hourly(2, 'a')])).admitted).toBe(false);
    expect((await take([hourly(2, 'b')])).admitted).toBe(true);
    expect((await limiter.peek([hourly(2, 'a'), hourly(2, 'b')])).map((s) => s.used)).toEqual([2, 1]);
  });

  it('admits only if every rule has room, and then reserves in none when one refuses', async () => {
    now = T0;
    const rules = [hourly(5), daily(2)];
    await fillAt(rules, [0, 1000]);
    now = T0 + 2000;
    const refused = await take(rules);
    expect(refused.admitted).toBe(false);
    expect(refused.blockedBy).toBe('daily');
    expect(refused.reservation).toBeUndefined();
    // The refused request reserved nothing: hourly still shows the two admitted ones.
    const states = await limiter.peek(rules);
    expect(byName(states, 'hourly')).toMatchObject({ used: 2, remaining: 3 });
    expect(byName(states, 'daily')).toMatchObject({ used: 2, remaining: 0 });
  });
});

describe('exact retry and state values', () => {
  it('gives the exact wait until the oldest event leaves (limit 3, events at 0, 10 s, 20 s)', async () => {
    const rules = [hourly(3)];
    await fillAt(rules, [0, 10_000, 20_000]);
    now = T0 + 30_000;
    const decision = await take(rules);
    expect(decision.admitted).toBe(false);
    expect(decision.blockedBy).toBe('hourly');
    expect(decision.retryAfterMs).toBe(HOUR - 30_000);
    expect(decision.states).toEqual([{ name: 'hourly', unit: 'requests', limit: 3, used: 3, remaining: 0, windowMs: HOUR, resetMs: HOUR - 30_000 }]);

    // At that exact moment the first event has left and one request fits again, no more.
    now += HOUR - 30_000;
    const admitted = await take(rules);
    expect(admitted.admitted).toBe(true);
    const again = await take(rules);
    expect(again.admitted).toBe(false);
    expect(again.retryAfterMs).toBe(10_000);
  });

  it('waits for as many events to leave as the cost needs', async () => {
    const rules = [hourly(5)];
    await fillAt(rules, [0, 1000, 2000, 3000, 4000]);
    now = T0 + 5000;
    const decision = await take(rules, 3); // three must leave: the third one leaves at 2000 + HOUR
    expect(decision.admitted).toBe(false);
    expect(decision.retryAfterMs).toBe(2000 + HOUR - 5000);
    now = T0 + 2000 + HOUR - 1;
    expect((await take(rules, 3)).admitted).toBe(false);
    now = T0 + 2000 + HOUR;
    expect((await take(rules, 3)).admitted).toBe(true);
  });

  it('gives the larger wait when both rules refuse (daily longer)', async () => {
    const rules = [hourly(2), daily(3)];
    await fillAt(rules, [0, 2 * HOUR, 2 * HOUR + 10_000]);
    now = T0 + 2 * HOUR + 20_000;
    const decision = await take(rules);
    expect(decision.admitted).toBe(false);
    // hourly frees up when the event at 2h leaves; daily only when the one at 0 leaves.
    expect(decision.retryAfterMs).toBe(DAY - (2 * HOUR + 20_000));
    expect(decision.blockedBy).toBe('daily');
  });

  it('gives the larger wait when both rules refuse (hourly longer)', async () => {
    const rules = [hourly(1), daily(2)];
    await fillAt(rules, [0, DAY - 30 * 60_000]);
    now = T0 + DAY - 10 * 60_000;
    const decision = await take(rules);
    expect(decision.admitted).toBe(false);
    expect(decision.retryAfterMs).toBe(40 * 60_000); // hourly: (DAY - 30 min) + 1 h - now
    expect(decision.blockedBy).toBe('hourly');
    // daily alone would have allowed it 10 minutes from now; hourly still refuses then.
    now += 10 * 60_000;
    const later = await take(rules);
    expect(later.admitted).toBe(false);
    expect(later.blockedBy).toBe('hourly');
    expect(later.retryAfterMs).toBe(30 * 60_000);
  });

  it('reports used, remaining and resetMs including the admitted request', async () => {
    const rules = [hourly(4), daily(10)];
    now = T0;
    const first = await take(rules);
    expect(first.states).toEqual([
      { name: 'hourly', unit: 'requests', limit: 4, used: 1, remaining: 3, windowMs: HOUR, resetMs: HOUR },
      { name: 'daily', unit: 'requests', limit: 10, used: 1, remaining: 9, windowMs: DAY, resetMs: DAY },
    ]);
    now = T0 + 60_000;
    const second = await take(rules);
    expect(second.states).toEqual([
      { name: 'hourly', unit: 'requests', limit: 4, used: 2, remaining: 2, windowMs: HOUR, resetMs: HOUR - 60_000 },
      { name: 'daily', unit: 'requests', limit: 10, used: 2, remaining: 8, windowMs: DAY, resetMs: DAY - 60_000 },
    ]);
    expect(await limiter.peek(rules)).toEqual(second.states);
  });

  it('never promises a retry for a cost larger than the limit', async () => {
    const decision = await take([hourly(3)], 4);
    expect(decision.admitted).toBe(false);
    expect(decision.retryAfterMs).toBeUndefined();
    expect((await limiter.peek([hourly(3)]))[0]!.used).toBe(0);
  });
});

describe('hold mode', () => {
  it('counts a hold while in flight and counts it at commit time', async () => {
    const rules = [hourly(2)];
    now = T0;
    const decision = await hold(rules);
    expect(decision.admitted).toBe(true);
    expect(decision.reservation?.held).toEqual({ s: 1 });
    expect(decision.states[0]).toMatchObject({ used: 1, remaining: 1 });
    expect((await limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1, resetMs: 0 });

    now = T0 + 5000;
    await limiter.commit(decision.reservation!);
    expect((await limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1, resetMs: HOUR });

    // Counted from the commit, not from the reservation.
    now = T0 + 5000 + HOUR - 1;
    expect((await limiter.peek(rules))[0]!.used).toBe(1);
    now = T0 + 5000 + HOUR;
    expect((await limiter.peek(rules))[0]!.used).toBe(0);
  });

  it('frees the slot on release', async () => {
    const rules = [hourly(1), daily(1)];
    const decision = await hold(rules);
    expect((await hold(rules)).admitted).toBe(false);
    await limiter.release(decision.reservation!);
    expect((await limiter.peek(rules)).map((s) => s.used)).toEqual([0, 0]);
    expect((await take(rules)).admitted).toBe(true);
  });

  it('settles a reservation once: a second commit or a release after commit changes nothing', async () => {
    const rules = [hourly(5)];
    const decision = await hold(rules, 2);
    await limiter.commit(decision.reservation!);
    await limiter.commit(decision.reservation!);
    await limiter.release(decision.reservation!);
    expect((await limiter.peek(rules))[0]).toMatchObject({ used: 2, remaining: 3 });
  });

  it('commit and release are no-ops for unheld reservations', async () => {
    const rules = [hourly(5)];
    const decision = await take(rules);
    expect(decision.reservation?.held).toEqual({});
    await limiter.release(decision.reservation!);
    await limiter.commit(decision.reservation!);
    expect((await limiter.peek(rules))[0]!.used).toBe(1);
  });

  it('refuses with a retry when only holds fill the window', async () => {
    const rules = [hourly(2)];
    await hold(rules);
    await hold(rules);
    const decision = await hold(rules);
    expect(decision.admitted).toBe(false);
    expect(decision.retryAfterMs).toBeGreaterThan(0);
    expect((await take(rules)).admitted).toBe(false);
  });

  it('holds and counted events add up in every rule of the series', async () => {
    const rules = [hourly(3), daily(4)];
    await fillAt(rules, [0, 1000]);
    now = T0 + 2000;
    const held = await hold(rules);
    expect(held.states.map((s) => s.used)).toEqual([3, 3]);
    const refused = await take(rules);
    expect(refused.admitted).toBe(false);
    expect(refused.blockedBy).toBe('hourly');
    expect(refused.retryAfterMs).toBe(HOUR - 2000);
  });
});

describe('costs', () => {
  it('admits a cost of 0 even when full, and it counts nothing', async () => {
    const rules = [hourly(1)];
    const zero = await take(rules, 0);
    expect(zero.admitted).toBe(true);
    expect(zero.states[0]).toMatchObject({ used: 0, remaining: 1, resetMs: 0 });
    await take(rules);
    expect((await take(rules, 0)).admitted).toBe(true);
    expect((await limiter.peek(rules))[0]!.used).toBe(1);
    expect(db.prepare('SELECT count(*) AS n FROM limit_events').get()).toEqual({ n: 1 });
  });

  it('rejects non-integer, negative and non-finite costs without reserving', async () => {
    const rules = [hourly(10)];
    for (const cost of [0.5, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(take(rules, cost)).rejects.toThrow(RangeError);
      await expect(hold(rules, cost)).rejects.toThrow(RangeError);
    }
    expect((await limiter.peek(rules))[0]!.used).toBe(0);
  });

  it('counts a cost above 1 as that many', async () => {
    const rules = [hourly(10)];
    expect((await take(rules, 4)).states[0]).toMatchObject({ used: 4, remaining: 6 });
    expect((await take(rules, 7)).admitted).toBe(false);
    expect((await take(rules, 6)).states[0]).toMatchObject({ used: 10, remaining: 0 });
  });
});

describe('prune', () => {
  const eventTimes = () => (db.prepare('SELECT ts FROM limit_events ORDER BY cum').all() as { ts: number }[]).map((r) => r.ts - T0);

  it('deletes only events older than the horizon, and answers stay the same', async () => {
    const rules = [hourly(1000), daily(1000)];
    const offsets = [0, 1000, 1000, 2000, 3 * HOUR, 5 * HOUR, DAY - 1000];
    await fillAt(rules, offsets);

    // Check the answers at several later moments (some exactly where an event leaves), before and
    // after pruning at each one.
    for (const at of [DAY - 1000, DAY, DAY + 999, DAY + 1000, DAY + 1999, DAY + 2000, DAY + 3 * HOUR, DAY + 5 * HOUR - 1, 2 * DAY - 1000, 2 * DAY]) {
      now = T0 + at;
      const before = await limiter.peek(rules);
      const ids = eventTimes();
      const removed = await limiter.prune(() => DAY);
      const expectedKept = ids.filter((t) => t > at - DAY);
      expect(eventTimes()).toEqual(expectedKept);
      expect(removed).toBe(ids.length - expectedKept.length);
      expect(await limiter.peek(rules)).toEqual(before);
      const brute = (window: number) => offsets.filter((t) => t > at - window).length;
      expect(before.map((s) => s.used)).toEqual([brute(HOUR), brute(DAY)]);
    }
  });

  it('keeps exact counts when new events come after a prune', async () => {
    const rules = [hourly(3)];
    await fillAt(rules, [0, 10, 20]);
    now = T0 + 2 * HOUR;
    expect(await limiter.prune(() => HOUR)).toBe(3);
    await fillAt(rules, [2 * HOUR, 2 * HOUR + 10, 2 * HOUR + 20]);
    now = T0 + 2 * HOUR + 30;
    const decision = await take(rules);
    expect(decision.admitted).toBe(false);
    expect(decision.retryAfterMs).toBe(HOUR - 30);
    expect(await limiter.prune(() => HOUR)).toBe(0);
    expect((await limiter.peek(rules))[0]!.used).toBe(3);
  });

  it('sweeps expired holds and only those', async () => {
    limiter = new SqliteLimiter(db, clock, 60_000);
    const rules = [hourly(2)];
    now = T0;
    const first = await hold(rules);
    now = T0 + 30_000;
    const second = await hold(rules);
    expect((await take(rules)).admitted).toBe(false);

    now = T0 + 59_999;
    expect(await limiter.prune(() => DAY)).toBe(0);
    expect((await limiter.peek(rules))[0]!.used).toBe(2);

    now = T0 + 60_000;
    expect(await limiter.prune(() => DAY)).toBe(1);
    expect((await limiter.peek(rules))[0]!.used).toBe(1);
    // The swept hold is gone for good: settling it later does not go negative or double count.
    await limiter.release(first.reservation!);
    expect((await limiter.peek(rules))[0]!.used).toBe(1);
    await limiter.commit(second.reservation!);
    expect((await limiter.peek(rules))[0]).toMatchObject({ used: 1, remaining: 1 });
    expect(db.prepare('SELECT count(*) AS n FROM limit_holds').get()).toEqual({ n: 0 });
  });
});

describe('cost of a check', () => {
  type Stmts = Record<string, Statement>;
  const statementsOf = (l: SqliteLimiter): Stmts => (l as unknown as { stmt: Stmts }).stmt;

  it('uses an index for every query on events and holds (no SCAN)', () => {
    const stmts = statementsOf(limiter);
    const names = Object.keys(stmts);
    // The check path must be among them, or this test checks nothing.
    expect(names).toEqual(expect.arrayContaining(['series', 'cumAtOrBefore', 'tsOfFirstCumAtLeast']));
    let checked = 0;
    for (const name of names) {
      const stmt = stmts[name]!;
      const source = stmt.source.trim();
      if (!/^(SELECT|DELETE|UPDATE)/i.test(source)) continue;
      const params = (source.match(/\?/g) ?? []).map(() => 1);
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
      expect(plan, `${name}: ${source}`).not.toMatch(/SCAN limit_events|SCAN limit_holds/);
      // A sort would read every matching row before LIMIT 1: the index order must serve it.
      expect(plan, `${name}: ${source}`).not.toMatch(/TEMP B-TREE/);
      if (/FROM limit_events/i.test(source)) {
        expect(plan, name).toMatch(/SEARCH limit_events USING (PRIMARY KEY|(COVERING )?INDEX)/);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });

  it('answers exactly with 200,000 events in the window', async () => {
    // Irregular times (with repeats) and costs 1..3, from a small deterministic generator.
    let seed = 42;
    const rand = () => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
    };
    const n = 200_000;
    const ts = new Float64Array(n);
    const cost = new Uint8Array(n);
    let t = T0;
    let cum = 0;
    const insert = db.prepare('INSERT INTO limit_events (series, cum, ts) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        t += Math.floor(rand() * 900); // about 200,000 × 450 ms ≈ 25 h
        ts[i] = t;
        cost[i] = 1 + Math.floor(rand() * 3);
        cum += cost[i]!;
        insert.run('big', cum, t);
      }
      db.prepare('INSERT INTO limit_series (series, cum, last_ts, held) VALUES (?, ?, ?, 0)').run('big', cum, t);
    })();
    const last = t;
    const brute = (at: number, window: number) => {
      let sum = 0;
      let oldest: number | undefined;
      for (let i = n - 1; i >= 0 && ts[i]! > at - window; i--) {
        if (ts[i]! <= at) {
          sum += cost[i]!;
          oldest = ts[i]!;
        }
      }
      return { sum, oldest };
    };

    const rules = [hourly(1_000_000, 'big'), daily(1_000_000, 'big')];
    for (const at of [last, last + 1, last + 10 * 60_000, last + HOUR - 1, last + 5 * HOUR]) {
      now = at;
      const states = await limiter.peek(rules);
      for (const [i, window] of [HOUR, DAY].entries()) {
        const expected = brute(at, window);
        expect(states[i]!.used).toBe(expected.sum);
        expect(states[i]!.resetMs).toBe(expected.oldest === undefined ? 0 : expected.oldest + window - at);
      }
    }

    // A limit exactly at the hourly count: full, and the retry is when enough has left.
    now = last + 1;
    const count = brute(now, HOUR);
    const full = [hourly(count.sum, 'big')];
    const decision = await take(full, 1);
    expect(decision.admitted).toBe(false);
    // The first event in the window leaves at oldest + HOUR; its cost frees at least one unit.
    expect(decision.retryAfterMs).toBe(count.oldest! + HOUR - now);
    const roomy = [hourly(count.sum + 1, 'big')];
    const ok = await take(roomy, 1);
    expect(ok.admitted).toBe(true);
    expect(ok.states[0]!.used).toBe(count.sum + 1);
  });
});

describe('two connections to one file', () => {
  it('share one exact count', async () => {
    const db2 = openSqlite(join(dir, 'limits.db'));
    const other = new SqliteLimiter(db2, clock);
    try {
      const rules = [hourly(10), daily(12)];
      let admitted = 0;
      const reservations: Reservation[] = [];
      for (let i = 0; i < 30; i++) {
        now = T0 + i * 1000;
        const d = await (i % 2 === 0 ? limiter : other).reserve(rules, costs(rules, 1, i % 3 === 0));
        if (d.admitted) {
          admitted++;
          if (Object.keys(d.reservation!.held).length > 0) reservations.push(d.reservation!);
        }
      }
      expect(admitted).toBe(10);
      expect(await limiter.peek(rules)).toEqual(await other.peek(rules));
      // A hold taken on one connection is settled on the other.
      for (const r of reservations) await other.release(r);
      expect((await limiter.peek(rules))[0]!.used).toBe(10 - reservations.length);
      expect(reservations.length).toBeGreaterThan(0);
    } finally {
      await other.close();
      db2.close();
    }
  });
});
