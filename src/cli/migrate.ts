/**
 * `proxygpt migrate --from ./data/proxygpt.db --to postgres://…`: moving a SQLite install up to
 * the Postgres store of several instances. Copies stored keys (their hashes: nobody gets a new
 * key), price overrides and usage history; running it again copies only what is new or changed
 * (postgres-import.ts). It never creates the SQLite file, and never prints the URL's password.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { openSqlite } from '../store/sqlite-db.js';
import { openPostgresStore, redactDatabaseUrl } from '../store/postgres.js';
import type { ImportReport } from '../store/postgres-import.js';
import { CliError } from './errors.js';

export interface MigrateOptions {
  from: string;
  to: string;
  /** Progress lines (to stderr). */
  progress: (line: string) => void;
}

/** Runs the copy; throws a CliError (exit 1) naming what is wrong, or when keys could not be copied. */
export async function migrateToPostgres(options: MigrateOptions): Promise<{ report: ImportReport; target: string }> {
  if (!/^postgres(ql)?:\/\//i.test(options.to)) throw new CliError(`--to must be a Postgres URL like postgres://user:password@host:5432/db (got ${JSON.stringify(redactDatabaseUrl(options.to))})`);
  const from = options.from.replace(/^sqlite:(\/\/)?/i, '');
  if (!existsSync(from) || !statSync(from).isFile()) throw new CliError(`--from: no SQLite database at ${from}`);
  const target = redactDatabaseUrl(options.to);
  const source = openSqlite(from);
  try {
    const store = await openPostgresStore(options.to, { log: options.progress }).catch((err: unknown) => {
      throw new CliError((err as Error).message);
    });
    try {
      const report = await store.importSqlite(source, { sourceId: `sqlite:${realpathSync(from)}`, log: options.progress });
      return { report, target };
    } finally {
      await store.close();
    }
  } finally {
    source.close();
  }
}

/** What the copy did, for people. */
export function migrateSummary(report: ImportReport, from: string, target: string): string {
  const k = report.keys;
  const lines = [
    `Copied ${from} to ${target}:`,
    `  keys: ${k.inserted} new, ${k.updated} updated, ${k.unchanged} unchanged${k.conflicts.length > 0 ? `, ${k.conflicts.length} not copied` : ''}`,
    `  price overrides: ${report.prices}`,
    `  usage records: ${report.usage.copied} copied, ${report.usage.alreadyThere} there already`,
  ];
  for (const conflict of k.conflicts) lines.push(`  not copied: ${conflict}`);
  return `${lines.join('\n')}\n`;
}
