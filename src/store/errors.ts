/**
 * The store's domain errors: what every Store implementation throws instead of its driver's own
 * error (a SQLite `SQLITE_CONSTRAINT_UNIQUE` or a Postgres `23505`), so callers handle one thing
 * whatever the backend.
 */

/** A key's name is already used by another key (names are unique). */
export class KeyNameTaken extends Error {
  constructor(readonly keyName: string) {
    super(`a key named ${JSON.stringify(keyName)} already exists`);
    this.name = 'KeyNameTaken';
  }
}

/** The store cannot be reached (connection refused, timed out, lost). */
export class StoreUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailable';
  }
}
