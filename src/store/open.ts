/**
 * The one place a Store is opened: the configured backend (the SQLite file, or Postgres for
 * several instances), migrated before it is handed out. The gateway, the cluster primary and the
 * CLI's direct mode all call openStore; nothing else constructs a store.
 */
import type { DatabaseConfig } from '../config.js';
import { urlPasswords } from '../url-secrets.js';
import type { Store } from '../contract.js';
import { StoreUnavailable } from './errors.js';
import { openSqlite } from './sqlite-db.js';
import { SqliteStore } from './sqlite.js';

/** What a store may report about trouble it handles itself (a lost connection, queued records). */
export type StoreLog = (level: 'info' | 'warn' | 'error', message: string, details?: Record<string, unknown>) => void;

export interface StoreOptions {
  log?: StoreLog;
}

/**
 * The Postgres backend is loaded only when configured, so a SQLite install never loads `pg`. It
 * connects and applies its migrations (under an advisory lock) before it answers; its errors name
 * PROXYGPT_DATABASE_URL with the password hidden, and are hidden again here to be sure.
 */
async function openPostgres(url: string, options: StoreOptions): Promise<Store> {
  const hide = (text: string) => urlPasswords(url).reduce((out, password) => out.split(password).join('***'), text);
  const { openPostgresStore } = await import('./postgres.js');
  try {
    return await openPostgresStore(url, { log: (message) => options.log?.(/lost|newer release/.test(message) ? 'warn' : 'info', message) });
  } catch (err) {
    const message = hide(err instanceof Error ? err.message : String(err));
    throw new StoreUnavailable(`the Postgres store could not be opened: ${message}`);
  }
}

/** Runs the store's migrations; a store that cannot be migrated is closed again. */
async function migrated(store: Store): Promise<Store> {
  try {
    await store.migrate();
    return store;
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/**
 * Opens and migrates the configured store. A Postgres store that cannot be opened (or migrated)
 * rejects with StoreUnavailable, its message free of the URL's password; a SQLite file that
 * cannot be opened rejects with the driver's error, as before.
 */
export async function openStore(database: DatabaseConfig, options: StoreOptions = {}): Promise<Store> {
  if (database.kind === 'postgres') return openPostgres(database.url, options);
  return migrated(new SqliteStore(openSqlite(database.path)));
}
