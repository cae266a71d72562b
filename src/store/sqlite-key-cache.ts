/**
 * Stored keys by hash for the SQLite store, kept between calls while the database is unchanged:
 * a proxied call then costs one `PRAGMA data_version` instead of the lookup. In WAL mode both open
 * a read transaction, most of what a point lookup costs, so what is saved is the B-tree search and
 * the policy's JSON parse (about 1 µs per call in a profile under load); and the same key object
 * comes back each call, so the call limits' plan for it (limits/call-limits.ts) is reused. SQLite
 * changes that number whenever another connection (another worker, the CLI on the same file, an
 * admin in another process) commits anything, and the store clears the cache itself on each of
 * its own key writes, which the number does not show. So a key revoked, disabled, rotated or
 * edited anywhere is seen on the very next call, as without a cache.
 * Only keys found are kept (an unknown secret is looked up every time), at most `max` of them.
 */
import type { StoredKey } from '../contract.js';

export class SqliteKeyCache {
  private readonly keys = new Map<string, StoredKey>();
  private seenVersion = -1;

  constructor(
    /** The connection's `PRAGMA data_version`. */
    private readonly dataVersion: () => number,
    private readonly max = 10_000,
  ) {}

  /** The key of `hash`, from the cache while the database is unchanged, else from `load`. */
  find(hash: string, load: () => StoredKey | null): StoredKey | null {
    const version = this.dataVersion();
    if (version !== this.seenVersion) {
      this.keys.clear();
      this.seenVersion = version;
    }
    const kept = this.keys.get(hash);
    if (kept !== undefined) return kept;
    const key = load();
    if (key !== null) {
      if (this.keys.size >= this.max) this.keys.clear();
      this.keys.set(hash, key);
    }
    return key;
  }

  /** After a key write on this connection (its own commits do not change data_version). */
  clear(): void {
    this.keys.clear();
  }
}
