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
 * What `./postgres.js` must export as `openPostgresStore`: a connected store, not yet migrated
 * (openStore migrates it). It throws the store's domain errors (StoreUnavailable when the server
 * cannot be reached), with no password in any message.
 */
export type OpenPostgresStore = (url: string, options: StoreOptions) => Promise<Store>;

/**
 * The Postgres backend is loaded only when configured, so a SQLite install never loads `pg`.
 * (A name, not a literal, while this build has no postgres.ts: the type checker does not look for it.)
 */
const POSTGRES_MODULE = './postgres.js';

async function loadPostgres(): Promise<OpenPostgresStore> {
  let entry: { openPostgresStore?: unknown };
  try {
    entry = (await import(POSTGRES_MODULE)) as { openPostgresStore?: unknown };
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || /Cannot find module|Failed to load url/i.test(String((err as Error | null)?.message))) {
      throw new Error('Postgres store not available in this build');
    }
    throw err;
  }
  if (typeof entry.openPostgresStore !== 'function') throw new Error('Postgres store not available in this build (no openPostgresStore)');
  return entry.openPostgresStore as OpenPostgresStore;
}

async function openPostgres(url: string, options: StoreOptions): Promise<Store> {
  const hide = (text: string) => urlPasswords(url).reduce((out, password) => out.split(password).join('***'), text);
  try {
    const open = await loadPostgres();
    return await migrated(await open(url, options));
  } catch (err) {
    const message = hide(err instanceof Error ? err.message : String(err));
    throw new StoreUnavailable(`the Postgres store could not be opened: ${message}`, { cause: err });
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
