/**
 * Bad input to the CLI: usage errors (unknown command or flag, missing argument, contradictory
 * flags) exit 2; failures (invalid values, unknown keys, a bad configuration) exit 1. Either way
 * the CLI prints one `proxygpt: …` line on stderr, nothing on stdout, and changes nothing.
 * Commands run in this process (test/cli/cli.ts); process.test.ts checks that the executable
 * passes exit codes and both streams on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from '../../src/version.js';
import { tempDir } from '../helpers.js';
import { runCli, runJson } from './cli.js';

let dir: string;
let env: Record<string, string>;
let before: unknown;

const cli = (...args: string[]) => runCli(args, { env });

beforeAll(async () => {
  dir = tempDir();
  env = { PROXYGPT_DATABASE_URL: join(dir, 'proxygpt.db'), PROXYGPT_ALLOWED_MODELS: 'gpt-4o*, gpt-4.1-mini' };
  await runJson(['keys', 'create', '--name', 'alice', '--rph', '10'], { env });
  before = await runJson(['keys', 'list'], { env });
});

afterAll(async () => {
  // Nothing any failing command did changed the stored keys.
  expect(await runJson(['keys', 'list'], { env })).toEqual(before);
  rmSync(dir, { recursive: true, force: true });
});

const usage: Array<[string, string[], string]> = [
  ['an unknown command', ['frobnicate'], "proxygpt: unknown command 'frobnicate'\n"],
  ['an unknown keys command', ['keys', 'lsit'], "proxygpt: unknown command 'lsit' (Did you mean list?)\n"],
  ['an unknown flag', ['keys', 'list', '--bogus'], "proxygpt: unknown option '--bogus'\n"],
  ['a misspelt flag', ['keys', 'create', '--name', 'x', '--rhp', '5'], "proxygpt: unknown option '--rhp' (Did you mean --rph?)\n"],
  ['a missing key argument', ['keys', 'show'], "proxygpt: missing required argument 'key'\n"],
  ['a missing --name', ['keys', 'create', '--rph', '5'], "proxygpt: required option '--name <name>' not specified\n"],
  ['a flag without its value', ['keys', 'update', 'alice', '--rph'], "proxygpt: option '--rph <n>' argument missing\n"],
  ['an extra argument', ['keys', 'show', 'alice', 'bob'], "proxygpt: too many arguments for 'show'. Expected 1 argument but got 2.\n"],
  ['an update that changes nothing', ['keys', 'update', 'alice'], 'proxygpt: nothing to change: give at least one flag (see proxygpt keys update --help)\n'],
  ['--expires with --no-expiry', ['keys', 'update', 'alice', '--expires', '30d', '--no-expiry'], 'proxygpt: give either --expires or --no-expiry, not both\n'],
  ['--disable with --enable', ['keys', 'update', 'alice', '--disable', '--enable'], 'proxygpt: give either --disable or --enable, not both\n'],
  ['--admin-key without --url', ['--admin-key', 'some-admin-key-123456', 'keys', 'list'], 'proxygpt: --admin-key is only used with --url; without --url the CLI works on the database directly\n'],
  ['prices set without --output', ['prices', 'set', 'gpt-4o', '--input', '1'], "proxygpt: required option '--output <usd>' not specified\n"],
  ['serve with --url', ['--url', 'http://127.0.0.1:9', 'serve'], 'proxygpt: serve starts the server itself: --url and --admin-key do not apply (set PROXYGPT_ADMIN_KEY in the environment to turn the admin API on)\n'],
];

const failures: Array<[string, string[], string]> = [
  ['a negative limit', ['keys', 'update', 'alice', '--rph', '-3'], 'proxygpt: --rph must be a positive whole number, or none for no limit (got "-3")\n'],
  ['a word as a limit', ['keys', 'create', '--name', 'bob', '--rpd', 'abc'], 'proxygpt: --rpd must be a positive whole number, or none for no limit (got "abc")\n'],
  ['a zero limit', ['keys', 'update', 'alice', '--tpd', '0'], 'proxygpt: --tpd must be a positive whole number, or none for no limit (got "0")\n'],
  ['a fractional count', ['keys', 'update', 'alice', '--tph', '1.5'], 'proxygpt: --tph must be a positive whole number, or none for no limit (got "1.5")\n'],
  ['a negative budget', ['keys', 'update', 'alice', '--usd-day', '-1'], 'proxygpt: --usd-day must be a positive amount of US dollars like 5 or 0.50, or none for no limit (got "-1")\n'],
  ['an invalid duration', ['keys', 'create', '--name', 'bob', '--expires', '30x'], 'proxygpt: --expires must be a duration like 30d, 12h, 90m or 2w, an ISO date or time like 2026-12-31T18:00:00Z, or never (got "30x")\n'],
  ['a bare number as expiry', ['keys', 'update', 'alice', '--expires', '30'], 'proxygpt: --expires must be a duration like 30d, 12h, 90m or 2w, an ISO date or time like 2026-12-31T18:00:00Z, or never (got "30")\n'],
  ['an expiry in the past', ['keys', 'update', 'alice', '--expires', '2001-01-01'], 'proxygpt: --expires 2001-01-01 is in the past; to cut a key off now use: proxygpt keys revoke <key>\n'],
  ['an invalid IP range', ['keys', 'update', 'alice', '--ips', '10.0.0.0/33'], 'proxygpt: ips: "10.0.0.0/33" is not an IP address or CIDR range\n'],
  ['an endpoint the gateway does not expose', ['keys', 'update', 'alice', '--endpoints', 'POST /v1/embeddings'], 'proxygpt: endpoints: POST /v1/embeddings is not enabled on this gateway (PROXYGPT_ALLOWED_ENDPOINTS)\n'],
  ['a model the gateway does not allow', ['keys', 'create', '--name', 'bob', '--models', 'gpt-4o-mini,o3'], 'proxygpt: models: o3 is not enabled on this gateway (PROXYGPT_ALLOWED_MODELS)\n'],
  ['an invalid name', ['keys', 'create', '--name', 'bad name!'], 'proxygpt: name: names are 1-64 letters, digits and . _ @ : + - (starting with a letter or digit)\n'],
  ['a duplicate name', ['keys', 'create', '--name', 'alice'], 'proxygpt: A key named "alice" already exists.\n'],
  ['an unknown key (show)', ['keys', 'show', 'nobody'], 'proxygpt: No key named or with id "nobody".\n'],
  ['an unknown key (update)', ['keys', 'update', 'nobody', '--rph', '5'], 'proxygpt: No key named or with id "nobody".\n'],
  ['an unknown key (rotate)', ['keys', 'rotate', 'nobody'], 'proxygpt: No key named or with id "nobody".\n'],
  ['an unknown key (revoke)', ['keys', 'revoke', 'nobody'], 'proxygpt: No key named or with id "nobody".\n'],
  ['an unknown key (delete)', ['keys', 'delete', 'nobody'], 'proxygpt: No key named or with id "nobody".\n'],
  ['an invalid --since', ['usage', '--since', 'last tuesday'], 'proxygpt: --since must be an ISO time like 2026-05-01T00:00:00Z, epoch milliseconds, or a duration back from now like 7d (got "last tuesday")\n'],
  ['an invalid price', ['prices', 'set', 'gpt-4o', '--input', 'cheap', '--output', '1'], 'proxygpt: --input must be a price in US dollars per million tokens, like 2.5 (got "cheap")\n'],
];

describe.concurrent('usage errors exit 2', () => {
  it.each(usage)('%s', async (_what, args, message) => {
    const result = await cli(...args);
    expect(result).toEqual({ code: 2, stdout: '', stderr: message });
  });

  it('shows help (on stderr) without a command', async () => {
    for (const args of [[], ['keys'], ['prices']]) {
      const result = await cli(...args);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^Usage: proxygpt/);
    }
  });
});

describe.concurrent('failures exit 1', () => {
  it.each(failures)('%s', async (_what, args, message) => {
    const result = await cli(...args);
    expect(result).toEqual({ code: 1, stdout: '', stderr: message });
  });

  it('an unsupported database URL', async () => {
    const flag = await runCli(['--db', 'redis://x/1', 'keys', 'list'], { env: {} });
    expect(flag).toEqual({ code: 1, stdout: '', stderr: 'proxygpt: invalid configuration: --db: unsupported scheme (got "redis://x/1"); use a file path, sqlite:path or postgres://…\n' });
    const noHost = await runCli(['keys', 'list'], { env: { PROXYGPT_DATABASE_URL: 'postgres:///proxygpt' } });
    expect(noHost).toEqual({ code: 1, stdout: '', stderr: 'proxygpt: invalid configuration: PROXYGPT_DATABASE_URL: names no host (got "postgres:///proxygpt"); expected postgres://user:password@host:5432/database\n' });
  });

  it('a Postgres store that cannot be opened (nothing listens on port 1), with the password hidden', async () => {
    const result = await runCli(['keys', 'list'], { env: { PROXYGPT_DATABASE_URL: 'postgres://gateway:pg-secret-4c3d@127.0.0.1:1/proxygpt' } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^proxygpt: could not open the database at postgres:\/\/gateway:\*\*\*@127\.0\.0\.1:1\/proxygpt: the Postgres store could not be opened: .+\n$/);
    expect(result.stderr).not.toContain('pg-secret-4c3d');
  });

  it('a file that is not a database', async () => {
    const result = await runCli(['--db', join(dir, '..'), 'keys', 'list'], { env: {} });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^proxygpt: could not open the database at .+: .+\n$/);
  });
});

describe.concurrent('help and version', () => {
  it('--help lists the commands and exits 0', async () => {
    const result = await cli('--help');
    expect(result.code).toBe(0);
    for (const command of ['serve', 'keys', 'usage', 'prices']) expect(result.stdout).toMatch(new RegExp(`\\n  ${command}\\b`));
  });

  it('keys create --help lists every policy flag', async () => {
    const result = await cli('keys', 'create', '--help');
    expect(result.code).toBe(0);
    for (const flag of ['--name', '--rph', '--rpd', '--tph', '--tpd', '--usd-day', '--usd-month', '--models', '--endpoints', '--ips', '--expires', '--notes', '--db', '--url', '--json']) {
      expect(result.stdout).toContain(flag);
    }
  });

  it('--version prints the version', async () => {
    expect(await cli('--version')).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });
});
