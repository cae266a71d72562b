/**
 * Who counts limits in one SQLite file. A gateway with one worker keeps its windows in memory
 * (exact because one process decides everything) and needs to be the file's only limiter; worker
 * processes of a cluster share the file through transactions and may be many. Each running
 * limiter holds a lease row it renews; a new one is refused while a live lease conflicts with it,
 * so two single-worker gateways can never split one set of limits between them.
 *
 * A lease is live while renewed within `LEASE_TTL_MS`, unless its process is visibly gone: same
 * host and its pid no longer runs, or same host and pid but an earlier start of the process (a
 * restarted container whose process is pid 1 again). Leases run on the real clock, whatever clock
 * the limiter itself is given.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { SqliteDatabase } from '../store/sqlite-db.js';

export const LEASE_TTL_MS = 15_000;
export const LEASE_RENEW_MS = 3_000;
/** How long a claim waits for another process's write lock before failing start-up. */
const CLAIM_WAIT_MS = 5_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS limit_owners (
  owner TEXT PRIMARY KEY,
  exclusive INTEGER NOT NULL,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started INTEGER NOT NULL,
  renewed INTEGER NOT NULL
) WITHOUT ROWID;
`;

interface LeaseRow {
  owner: string;
  exclusive: number;
  host: string;
  pid: number;
  started: number;
  renewed: number;
}

/** Another process counts this file's limits in a way that excludes this one. */
export class LimiterConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LimiterConflictError';
  }
}

/** Start-up only: runs `step`, pausing briefly (blocking) while another process holds the write lock. */
export function retryWhileBusy(step: () => void): void {
  const giveUpAt = Date.now() + CLAIM_WAIT_MS;
  for (;;) {
    try {
      step();
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > giveUpAt) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const PROCESS_STARTED = Math.round(performance.timeOrigin);

export class LimiterLease {
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly stmt;
  private readonly take;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    db: SqliteDatabase,
    private readonly exclusive: boolean,
    private readonly onLost: (err: LimiterConflictError) => void,
  ) {
    this.stmt = {
      all: db.prepare<[], LeaseRow>('SELECT * FROM limit_owners'),
      put: db.prepare<[string, number, string, number, number, number]>(
        'INSERT INTO limit_owners (owner, exclusive, host, pid, started, renewed) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      touch: db.prepare<[number, string]>('UPDATE limit_owners SET renewed = ? WHERE owner = ?'),
      drop: db.prepare<[string]>('DELETE FROM limit_owners WHERE owner = ?'),
    };
    this.take = db.transaction(() => {
      const now = Date.now();
      for (const row of this.stmt.all.all()) {
        if (!this.isLive(row, now)) {
          this.stmt.drop.run(row.owner);
          continue;
        }
        if (exclusive || row.exclusive === 1) throw new LimiterConflictError(conflictMessage(row, exclusive));
      }
      this.stmt.put.run(this.owner, exclusive ? 1 : 0, hostname(), process.pid, PROCESS_STARTED, now);
    });
    this.timer = setInterval(() => this.renew(), LEASE_RENEW_MS);
    this.timer.unref();
  }

  /**
   * Takes a lease: `exclusive` for an in-memory limiter (no other limiter may be live), shared
   * for a transactional one (no exclusive one may be live). Throws LimiterConflictError. Should
   * the lease lapse later (this process stalled past the TTL) and a conflicting one be taken
   * meanwhile, `onLost` is told and the lease is not renewed again.
   */
  static claim(db: SqliteDatabase, exclusive: boolean, onLost: (err: LimiterConflictError) => void = () => {}): LimiterLease {
    retryWhileBusy(() => db.exec(SCHEMA));
    const lease = new LimiterLease(db, exclusive, onLost);
    try {
      retryWhileBusy(() => lease.take.immediate());
    } catch (err) {
      clearInterval(lease.timer);
      throw err;
    }
    return lease;
  }

  private isLive(row: LeaseRow, now: number): boolean {
    if (now - row.renewed >= LEASE_TTL_MS) return false;
    if (row.host !== hostname()) return true;
    if (row.pid === process.pid) return row.started === PROCESS_STARTED;
    return pidRuns(row.pid);
  }

  /** Renews the lease; a busy database is no failure (the next renewal comes well within the TTL). */
  private renew(): void {
    try {
      if (this.stmt.touch.run(Date.now(), this.owner).changes > 0) return;
      // Dropped as stale by another claimant (this process stalled): take it again if nothing conflicts.
      this.take.immediate();
    } catch (err) {
      if (err instanceof LimiterConflictError) {
        clearInterval(this.timer);
        this.onLost(err);
      }
      // anything else (busy, closed): retried at the next tick
    }
  }

  release(): void {
    clearInterval(this.timer);
    try {
      this.stmt.drop.run(this.owner);
    } catch {
      // the row goes stale on its own
    }
  }
}

function conflictMessage(row: LeaseRow, exclusive: boolean): string {
  const who = `process ${row.pid} on ${row.host}`;
  return exclusive
    ? `another ProxyGPT process (${who}) is counting limits in this database. One database serves one gateway: ` +
        'stop the other one, give each its own PROXYGPT_DATABASE_URL, or run one gateway with PROXYGPT_WORKERS > 1.'
    : `a single-worker ProxyGPT gateway (${who}) is counting limits in this database in memory; stop it before ` +
        'starting workers on the same file.';
}
