/**
 * Limiter leases on a real SQLite file: an in-memory limiter's lease is exclusive and a SqliteLimiter's
 * shared, so two memory limiters or a memory and a SQLite limiter never count one file together
 * (whichever starts first), while SQLite limiters share it; a released lease frees the file, and a
 * lease whose process is gone (not renewed within LEASE_TTL_MS, a dead pid, an earlier start of
 * this pid) blocks nothing. Leases run on the real clock whatever clock the limiter has.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { openSqlite, type SqliteDatabase } from '../../src/store/sqlite-db.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { MemoryLimiter } from '../../src/limits/memory.js';
import { LEASE_TTL_MS, LimiterConflictError, LimiterLease } from '../../src/limits/ownership.js';
import type { Limiter } from '../../src/limits/limiter.js';
import { tempDir } from '../helpers.js';
import { hourly, T0 } from './limiter-helpers.js';

let dir: string;
let file: string;
let dbs: SqliteDatabase[];
let open: { close(): unknown }[];

beforeEach(() => {
  dir = tempDir();
  file = join(dir, 'limits.db');
  dbs = [];
  open = [];
});
afterEach(async () => {
  for (const o of open.reverse()) await o.close();
  for (const db of dbs) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A new connection to the file, as another process would open. */
function connection(): SqliteDatabase {
  const db = openSqlite(file);
  dbs.push(db);
  return db;
}
/** Clocks far from today: leases must not read them. */
const pastClock = () => T0 - 10 * 365 * 86_400_000;
function start(kind: 'sqlite' | 'memory'): Limiter {
  const limiter = kind === 'sqlite' ? new SqliteLimiter(connection(), pastClock) : new MemoryLimiter(connection(), pastClock);
  open.push(limiter);
  return limiter;
}
function claim(db: SqliteDatabase, exclusive: boolean): LimiterLease {
  const lease = LimiterLease.claim(db, exclusive);
  open.push({ close: () => lease.release() });
  return lease;
}
const owners = (db: SqliteDatabase) => db.prepare('SELECT owner, exclusive FROM limit_owners ORDER BY owner').all() as { owner: string; exclusive: number }[];

describe('who may count one file', () => {
  it('refuses a second memory limiter', () => {
    start('memory');
    expect(() => start('memory')).toThrow(LimiterConflictError);
  });

  it('refuses a SQLite limiter beside a memory limiter, and a memory limiter beside a SQLite one', () => {
    start('memory');
    expect(() => start('sqlite')).toThrow(LimiterConflictError);

    const other = join(dir, 'other.db');
    const a = openSqlite(other);
    const b = openSqlite(other);
    dbs.push(a, b);
    open.push(new SqliteLimiter(a));
    expect(() => new MemoryLimiter(b)).toThrow(/another ProxyGPT process/);
  });

  it('lets SQLite limiters share the file, each with its own lease, and they count together', async () => {
    const first = start('sqlite');
    const second = start('sqlite');
    const third = start('sqlite');
    const db = dbs[0]!;
    expect(owners(db)).toHaveLength(3);
    expect(owners(db).every((o) => o.exclusive === 0)).toBe(true);
    await first.reserve([hourly(2)], { s: { amount: 1, hold: false } });
    await second.reserve([hourly(2)], { s: { amount: 1, hold: false } });
    expect((await third.reserve([hourly(2)], { s: { amount: 1, hold: false } })).admitted).toBe(false);
  });

  it('names the process that holds the file', () => {
    start('memory');
    expect(() => start('memory')).toThrow(`process ${process.pid} on ${hostname()}`);
  });
});

describe('releasing', () => {
  it('frees the file when a memory limiter closes, for either kind', async () => {
    const memory = start('memory');
    expect(owners(dbs[0]!)).toEqual([expect.objectContaining({ exclusive: 1 })]);
    await memory.close();
    expect(owners(dbs[0]!)).toEqual([]);
    const sqlite = start('sqlite');
    expect(() => start('memory')).toThrow(LimiterConflictError);
    await sqlite.close();
    expect(owners(dbs[0]!)).toEqual([]);
    expect(() => start('memory')).not.toThrow();
  });

  it('frees only its own lease', () => {
    const db = connection();
    const a = claim(db, false);
    const b = claim(db, false);
    a.release();
    expect(owners(db).map((o) => o.owner)).toEqual([b.owner]);
    expect(() => claim(db, true)).toThrow(LimiterConflictError);
    b.release();
    expect(() => claim(db, true)).not.toThrow();
  });
});

describe('leases whose process is gone', () => {
  /** A lease row as another process would have written it. */
  function plant(db: SqliteDatabase, row: { exclusive: number; host?: string; pid?: number; started?: number; renewed?: number }): void {
    db.exec(
      'CREATE TABLE IF NOT EXISTS limit_owners (owner TEXT PRIMARY KEY, exclusive INTEGER NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, started INTEGER NOT NULL, renewed INTEGER NOT NULL) WITHOUT ROWID',
    );
    db.prepare('INSERT INTO limit_owners (owner, exclusive, host, pid, started, renewed) VALUES (?, ?, ?, ?, ?, ?)').run(
      `planted-${Math.random()}`,
      row.exclusive,
      row.host ?? 'another-host.example',
      row.pid ?? 4242,
      row.started ?? 1,
      row.renewed ?? Date.now(),
    );
  }

  it('counts a live exclusive lease of another host as live: it blocks both kinds', () => {
    const db = connection();
    plant(db, { exclusive: 1 });
    expect(() => claim(db, true)).toThrow(LimiterConflictError);
    expect(() => claim(db, false)).toThrow(LimiterConflictError);
  });

  it('counts a live shared lease of another host: it blocks a memory limiter only', () => {
    const db = connection();
    plant(db, { exclusive: 0 });
    expect(() => claim(db, true)).toThrow(LimiterConflictError);
    expect(() => claim(db, false)).not.toThrow();
  });

  it('ignores and drops a lease not renewed within LEASE_TTL_MS', () => {
    const db = connection();
    plant(db, { exclusive: 1, renewed: Date.now() - LEASE_TTL_MS - 1 });
    const lease = claim(db, true);
    expect(owners(db)).toEqual([{ owner: lease.owner, exclusive: 1 }]);
  });

  it('ignores a lease of this host whose process no longer runs', () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    expect(gone).toBeGreaterThan(0);
    const db = connection();
    plant(db, { exclusive: 1, host: hostname(), pid: gone });
    expect(() => start('memory')).not.toThrow();
  });

  it('ignores a lease of this pid from an earlier start of the process (a restarted container)', () => {
    const db = connection();
    plant(db, { exclusive: 1, host: hostname(), pid: process.pid, started: Math.round(performance.timeOrigin) - 60_000 });
    expect(() => claim(db, true)).not.toThrow();
  });
});

describe('a lease that lapsed while its process stalled', () => {
  const renew = (lease: LimiterLease) => (lease as unknown as { renew(): void }).renew();
  const age = (db: SqliteDatabase) => db.prepare('UPDATE limit_owners SET renewed = ?').run(Date.now() - LEASE_TTL_MS - 1);

  it('is not taken back when another limiter claimed the file meanwhile, and its owner is told', () => {
    const db = connection();
    const lost: LimiterConflictError[] = [];
    const stalled = LimiterLease.claim(db, true, (err) => lost.push(err));
    open.push({ close: () => stalled.release() });
    age(db);
    const successor = claim(db, true);
    renew(stalled);
    expect(owners(db)).toEqual([{ owner: successor.owner, exclusive: 1 }]);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(LimiterConflictError);
  });

  it('is taken back when nobody claimed the file meanwhile', () => {
    const db = connection();
    const lost: LimiterConflictError[] = [];
    const stalled = LimiterLease.claim(db, true, (err) => lost.push(err));
    open.push({ close: () => stalled.release() });
    age(db);
    db.prepare('DELETE FROM limit_owners').run(); // a claimant that dropped it as stale, then failed
    renew(stalled);
    expect(owners(db)).toEqual([{ owner: stalled.owner, exclusive: 1 }]);
    expect(lost).toEqual([]);
  });
});
