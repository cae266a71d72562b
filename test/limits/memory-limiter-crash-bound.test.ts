/**
 * The memory limiter's crash bound (README: a crash forgets at most the last 100 ms of counts):
 * its journal timer runs every 50 ms, and when the event loop is too busy for the timer to run,
 * the calls themselves write the journal once its oldest event has waited a whole interval. Shown
 * with the event loop blocked (a busy wait), where no timer can fire: the next call writes it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { JOURNAL_LOSS_BOUND_MS, MemoryLimiter } from '../../src/limits/memory.js';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { tempDir } from '../helpers.js';
import { hourly, T0 } from './limiter-helpers.js';

const FLUSH_MS = 30;
let dir: string;
let db: SqliteDatabase;
let limiter: MemoryLimiter;

beforeEach(() => {
  dir = tempDir();
  db = openSqlite(join(dir, 'limits.db'));
  limiter = new MemoryLimiter(db, () => T0, 60_000, { flushMs: FLUSH_MS });
});
afterEach(async () => {
  await limiter.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const rules = [hourly(100)];
const counted = { s: { amount: 1, hold: false } };
const written = () => (db.prepare("SELECT coalesce(max(cum), 0) AS n FROM limit_events WHERE series = 's'").get() as { n: number }).n;
const busyWait = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until);
};

describe('memory limiter crash bound', () => {
  it('promises twice its default interval', () => {
    expect(JOURNAL_LOSS_BOUND_MS).toBe(100);
  });

  it('a call writes the journal when the timer is late (the event loop was busy)', () => {
    void limiter.reserve(rules, counted);
    expect(written()).toBe(0); // just counted: not written yet
    busyWait(FLUSH_MS + 10); // no timer can run meanwhile
    void limiter.reserve(rules, counted);
    // Both are written: the first had waited a whole interval, and one transaction takes all.
    expect(written()).toBe(2);
  });

  it('a commit writes it too', async () => {
    const held = await limiter.reserve(rules, { s: { amount: 1, hold: true } });
    void limiter.reserve(rules, counted);
    busyWait(FLUSH_MS + 10);
    void limiter.commit(held.reservation!, { s: 1 });
    expect(written()).toBe(2);
  });

  it('a call soon after the last write does not write again', () => {
    void limiter.reserve(rules, counted);
    busyWait(FLUSH_MS + 10);
    void limiter.reserve(rules, counted); // writes (late)
    void limiter.reserve(rules, counted); // 0 ms after: stays in memory
    expect(written()).toBe(2);
  });
});
