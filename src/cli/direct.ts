/**
 * Direct mode: works on the configured store (the SQLite file, or Postgres) through the same
 * KeyService the admin API uses, and answers in the admin API's exact JSON. Safe beside a running
 * server (SQLite: WAL journal, busy timeout); stored keys are looked up on every request, so
 * changes apply at once there, and price overrides within the server's price cache time (2 s).
 */
import { existsSync } from 'node:fs';
import { ConfigError, loadAdminConfig } from '../config.js';
import { redactUrl } from '../url-secrets.js';
import type { Store } from '../contract.js';
import { ApiError } from '../errors.js';
import { KeyService } from '../keys/service.js';
import { parseTime } from '../routes/admin.js';
import { openStore } from '../store/open.js';
import type { AdminBackend, KeyBody, PriceInput, UsageQuery } from './backend.js';
import { CliError } from './errors.js';

export interface DirectOptions {
  /** `--db`: a file path, `sqlite:path` or `postgres://…`; else PROXYGPT_DATABASE_URL; else ./data/proxygpt.db. */
  db?: string;
  env: Record<string, string | undefined>;
  /** Create the SQLite database when it does not exist yet (commands that store something). */
  create: boolean;
  /** Told when a new database file was created. */
  onCreate?: (path: string) => void;
}

/** Turns the service's ApiError (not found, validation, conflict) into the CLI's one-line error. */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApiError) throw new CliError(err.message);
    throw err;
  }
}

export class DirectBackend implements AdminBackend {
  private constructor(
    private readonly store: Store,
    private readonly keys: KeyService,
    private readonly clock: () => number,
  ) {}

  static async open(options: DirectOptions): Promise<DirectBackend> {
    const env = { ...options.env };
    if (options.db !== undefined) env.PROXYGPT_DATABASE_URL = options.db;
    let config;
    try {
      config = loadAdminConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) {
        const message = options.db !== undefined && err.variable === 'PROXYGPT_DATABASE_URL' ? err.message.replace('PROXYGPT_DATABASE_URL', '--db') : err.message;
        throw new CliError(`invalid configuration: ${message}`);
      }
      throw err;
    }
    const database = config.database;
    const where = database.kind === 'sqlite' ? database.path : redactUrl(database.url);
    const isNew = database.kind === 'sqlite' && database.path !== ':memory:' && !existsSync(database.path);
    if (isNew && !options.create) {
      throw new CliError(
        `no database at ${where}: set PROXYGPT_DATABASE_URL (or .env), pass --db <path>, or use --url to manage a running server`,
      );
    }
    let store: Store;
    try {
      store = await openStore(database);
    } catch (err) {
      // openStore's errors show no password (see store/open.ts).
      const message = err instanceof Error ? err.message : String(err);
      throw new CliError(`could not open the database at ${where}: ${message}`);
    }
    if (isNew) options.onCreate?.(where);
    return new DirectBackend(store, new KeyService(store, config), Date.now);
  }

  createKey(body: KeyBody) {
    return guarded(async () => {
      const created = await this.keys.create(body);
      return { ...created.key, key: created.secret };
    });
  }

  listKeys() {
    return guarded(async () => ({ object: 'list' as const, data: await this.keys.list() }));
  }

  showKey(key: string) {
    return guarded(() => this.keys.show(key));
  }

  updateKey(key: string, body: KeyBody) {
    return guarded(() => this.keys.update(key, body));
  }

  rotateKey(key: string) {
    return guarded(async () => {
      const rotated = await this.keys.rotate(key);
      return { ...rotated.key, key: rotated.secret };
    });
  }

  revokeKey(key: string) {
    return guarded(() => this.keys.revoke(key));
  }

  deleteKey(key: string) {
    return guarded(() => this.keys.remove(key));
  }

  usage(query: UsageQuery) {
    return guarded(() => {
      const now = this.clock();
      return this.keys.usage({ key: query.key, since: parseTime(query.since, now, 'since'), until: parseTime(query.until, now, 'until'), upstream: query.upstream });
    });
  }

  prices() {
    return guarded(() => this.keys.prices());
  }

  setPrice(model: string, price: PriceInput) {
    return guarded(async () => {
      const stored = { input: price.input, cachedInput: price.cached_input ?? price.input, output: price.output };
      await this.keys.setPrice(model, stored);
      return { model, ...stored };
    });
  }

  unsetPrice(model: string) {
    return guarded(async () => {
      await this.keys.setPrice(model, null);
      return { model, deleted: true as const };
    });
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
