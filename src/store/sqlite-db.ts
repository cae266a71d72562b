/**
 * Opens the embedded SQLite database the way every module here expects it: WAL journal (readers
 * never block the writer, several worker processes share one file), NORMAL sync (no fsync per
 * commit; durable at checkpoints), and a busy timeout so BEGIN IMMEDIATE waits instead of failing.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type SqliteDatabase = Database.Database;

/**
 * `busyTimeoutMs` is how long a write waits for another connection's lock inside SQLite (blocking
 * the event loop, in sleeps of a millisecond or more). The limiter opens its own connection with 0
 * and retries without blocking instead (see limits/sqlite.ts).
 */
export function openSqlite(path: string, busyTimeoutMs = 10_000): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  return db;
}
