/**
 * The Postgres the tests run against: PROXYGPT_TEST_POSTGRES_URL, or the machine's own
 * (postgres://postgres@127.0.0.1:5432/test, trust auth). `postgresTarget()` says whether it answers;
 * when it does not, CI (`CI=true`) fails the run, and anywhere else the Postgres suites are skipped
 * (`describe.skipIf(!postgres.available)`) with one console line for the whole run. Each test file
 * (or case) works in a schema of its own (`uniqueSchema`), dropped afterwards, so parallel files
 * and other people's runs on the same server never meet.
 */
import pg from 'pg';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { redactDatabaseUrl } from '../../src/store/postgres.js';

export const DEFAULT_TEST_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface PostgresTarget {
  available: boolean;
  url: string;
}

let target: Promise<PostgresTarget> | undefined;

async function reachable(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err instanceof Error && err.message !== '' ? err.message : String((err as { code?: unknown }).code ?? err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The skip line once per vitest run, not once per test file: the first file (each runs in a
 * child of the same vitest process) to claim a marker named after that process prints it.
 */
function sayOnce(line: string): void {
  let runId = String(process.ppid);
  try {
    runId += `-${readFileSync(`/proc/${process.ppid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]}`;
  } catch {
    // no /proc: the parent's pid alone
  }
  try {
    closeSync(openSync(join(tmpdir(), `proxygpt-postgres-skip-${runId}`), 'wx'));
  } catch {
    return;
  }
  console.warn(line);
}

export function postgresTarget(): Promise<PostgresTarget> {
  target ??= (async () => {
    const url = process.env.PROXYGPT_TEST_POSTGRES_URL || DEFAULT_TEST_POSTGRES_URL;
    const failure = await reachable(url);
    if (failure === null) return { available: true, url };
    const line = `Postgres not reachable at ${redactDatabaseUrl(url)} (${failure}): skipping Postgres suites`;
    if (process.env.CI === 'true') throw new Error(`${line.replace(': skipping Postgres suites', '')}; CI=true needs it (set PROXYGPT_TEST_POSTGRES_URL)`);
    sayOnce(line);
    return { available: false, url };
  })();
  return target;
}

/** A schema name no other test file, run or helper uses: `t_<label>_<pid>_<random>`. */
export function uniqueSchema(label: string): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 24);
  return `t_${clean}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** One query on a connection of its own (for what a test checks beside the Store interface). */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  await adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
