/**
 * The `proxygpt` executable as a separate process (src/cli/main.ts, run as `npm run dev` runs the
 * sources): the other CLI tests call its `run()` in the test process, so these prove that the entry
 * point passes the arguments in, writes stdout and stderr to the right streams, exits with the
 * command's code (0, 1 and 2), and exits once the command is done. Reading .env from the working
 * directory is tested in direct.test.ts; `serve` in serve.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { hashSecret } from '../../src/auth/secrets.js';
import { openSqlite } from '../../src/store/sqlite-db.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { VERSION } from '../../src/version.js';
import { tempDir } from '../helpers.js';
import { runCliProcess } from './cli.js';

const SECRET = /pgpt-[A-Za-z0-9_-]{32}/g;

let dir: string;
let dbPath: string;

beforeAll(() => {
  dir = tempDir();
  dbPath = join(dir, 'gateway.db');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.concurrent('the proxygpt process', () => {
  it('--version: the version on stdout, exit 0', async () => {
    expect(await runCliProcess(['--version'], { cwd: dir })).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('a usage error exits 2 and a failure exits 1, each with one line on stderr only', async () => {
    const env = { PROXYGPT_DATABASE_URL: join(dir, 'missing.db') };
    const [usage, failure] = await Promise.all([
      runCliProcess(['keys', 'lsit'], { cwd: dir, env }),
      runCliProcess(['keys', 'list'], { cwd: dir, env }),
    ]);
    expect(usage).toEqual({ code: 2, stdout: '', stderr: "proxygpt: unknown command 'lsit' (Did you mean list?)\n" });
    expect(failure).toEqual({
      code: 1,
      stdout: '',
      stderr: `proxygpt: no database at ${env.PROXYGPT_DATABASE_URL}: set PROXYGPT_DATABASE_URL (or .env), pass --db <path>, or use --url to manage a running server\n`,
    });
  });

  it('keys create then keys list (direct mode): the secret once on stdout, stored as a hash, never listed', async () => {
    const env = { PROXYGPT_DATABASE_URL: dbPath };
    const created = await runCliProcess(['keys', 'create', '--name', 'erin', '--rph', '7'], { cwd: dir, env });
    expect(created.code).toBe(0);
    expect(created.stderr).toBe(`proxygpt: created a new database at ${dbPath}\n`);
    expect(created.stdout).toMatch(/^Created key erin \(key_[a-z2-7]{12}\)\./);
    const secrets = created.stdout.match(SECRET) ?? [];
    expect(secrets).toHaveLength(1);
    const id = /\((key_[a-z2-7]{12})\)/.exec(created.stdout)![1]!;

    const store = new SqliteStore(openSqlite(dbPath));
    try {
      expect(await store.findKeyByHash(hashSecret(secrets[0]!))).toMatchObject({ id, name: 'erin', policy: { requestsPerHour: 7 } });
    } finally {
      await store.close();
    }

    const listed = await runCliProcess(['keys', 'list'], { cwd: dir, env });
    expect(listed.code).toBe(0);
    expect(listed.stderr).toBe('');
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+PREFIX\s+LIMITS\s+EXPIRES$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(new RegExp(`^${id}\\s+erin\\s+active\\s+pgpt-\\S{4}…\\s+7 req/h\\s+never$`));
    expect(listed.stdout.match(SECRET) ?? []).toEqual([]);
  });
});
