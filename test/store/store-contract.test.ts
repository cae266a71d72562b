/**
 * Runs every Store contract case (store-contract.ts) against every backend, each case on a fresh
 * store: SQLite in a temp file (opened as the app opens it), Postgres in a schema of its own
 * (skipped, with one line, where no Postgres answers; a failure under CI=true).
 */
import { afterEach, beforeEach, describe, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../../src/contract.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { tempDir } from '../helpers.js';
import { dropSchema, postgresTarget, uniqueSchema } from '../support/postgres.js';
import { storeCases } from './store-contract.js';

const postgres = await postgresTarget();

interface Backend {
  name: string;
  skip: boolean;
  open(): Promise<{ store: Store; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    skip: false,
    async open() {
      const dir = tempDir();
      const store = new SqliteStore(openSqlite(join(dir, 'proxygpt.db')));
      await store.migrate();
      return {
        store,
        async cleanup() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: !postgres.available,
    async open() {
      const schema = uniqueSchema('contract');
      const store = await openPostgresStore(postgres.url, { schema, poolSize: 4 });
      return {
        store,
        async cleanup() {
          await store.close();
          await dropSchema(postgres.url, schema);
        },
      };
    },
  },
];

describe.each(backends)('Store contract: $name', (backend) => {
  describe.skipIf(backend.skip)(backend.name, () => {
    let current: Awaited<ReturnType<Backend['open']>>;
    beforeEach(async () => {
      current = await backend.open();
    });
    afterEach(async () => {
      await current.cleanup();
    });
    for (const c of storeCases) it(c.name, () => c.run(current.store));
  });
});
