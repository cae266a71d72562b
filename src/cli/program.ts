/**
 * The `proxygpt` command: `serve`, `keys …`, `usage`, `prices …`, `upstreams list|check`. Every command except `serve`
 * talks to an AdminBackend: the database itself by default (direct mode), or a running server's
 * admin API with `--url` (remote mode); both print the same output. `--json` prints the admin
 * API's JSON exactly; errors are one line on stderr, exit code 1 for a failure and 2 for a usage
 * error.
 */
import { Command, CommanderError } from 'commander';
import { unquote } from '../config.js';
import { VERSION } from '../version.js';
import type { AdminBackend } from './backend.js';
import { DirectBackend } from './direct.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE, usageError } from './errors.js';
import * as format from './format.js';
import { checkTime, keyBody, priceBody, type KeyFlags } from './input.js';
import { parseServerUrl, RemoteBackend } from './remote.js';

interface GlobalOptions {
  db?: string;
  url?: string;
  adminKey?: string;
  json?: boolean;
}

export interface CliIo {
  env: Record<string, string | undefined>;
  out(text: string): void;
  err(text: string): void;
}

/** What a run ended with: an exit code, or `serving` when `serve` started a server that keeps the process alive. */
export type RunResult = number | 'serving';

class Cli {
  /** Values never to print (the admin key): replaced in every message that leaves the CLI. */
  private readonly secrets: string[] = [];
  serving = false;

  constructor(readonly io: CliIo) {}

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (secret !== '') out = out.split(secret).join('[admin key]');
    return out;
  }

  fail(message: string): void {
    this.io.err(`proxygpt: ${this.redact(message)}\n`);
  }

  async backend(command: Command, create = false): Promise<AdminBackend> {
    const opts = command.optsWithGlobals<GlobalOptions>();
    if (opts.adminKey !== undefined) this.secrets.push(opts.adminKey);
    if (opts.url !== undefined) {
      if (opts.db !== undefined) throw usageError('give either --db (work on the database) or --url (a running server), not both');
      const fromEnv = this.io.env.PROXYGPT_ADMIN_KEY === undefined ? undefined : unquote(this.io.env.PROXYGPT_ADMIN_KEY);
      const adminKey = opts.adminKey ?? fromEnv;
      if (adminKey === undefined || adminKey === '') throw usageError('--url needs the admin key: set PROXYGPT_ADMIN_KEY or pass --admin-key');
      this.secrets.push(adminKey);
      return new RemoteBackend(parseServerUrl(opts.url), adminKey);
    }
    if (opts.adminKey !== undefined) throw usageError('--admin-key is only used with --url; without --url the CLI works on the database directly');
    return DirectBackend.open({
      db: opts.db,
      env: this.io.env,
      create,
      onCreate: (path) => this.io.err(`proxygpt: created a new database at ${path}\n`),
    });
  }

  /** Runs `work` on the command's backend and prints its answer: JSON with --json, else `human`. */
  async with<T>(command: Command, work: (backend: AdminBackend) => Promise<T>, human: (value: T, backend: AdminBackend) => Promise<string> | string, create = false): Promise<void> {
    const backend = await this.backend(command, create);
    try {
      const value = await work(backend);
      const json = command.optsWithGlobals<GlobalOptions>().json === true;
      this.io.out(json ? `${JSON.stringify(value, null, 2)}\n` : await human(value, backend));
    } finally {
      await backend.close();
    }
  }
}

function policyOptions(command: Command, update: boolean): Command {
  const clear = update ? '; none removes it' : '';
  return command
    .option('--rph <n>', `requests per rolling hour${clear}`)
    .option('--rpd <n>', `requests per rolling day${clear}`)
    .option('--tph <n>', `tokens per rolling hour${clear}`)
    .option('--tpd <n>', `tokens per rolling day${clear}`)
    .option('--usd-day <usd>', `US dollars per rolling day${clear}`)
    .option('--usd-month <usd>', `US dollars per calendar month (UTC)${clear}`)
    .option('--max-concurrent <n>', `calls in flight at once (streams count while open)${clear}`)
    .option('--models <list>', `allowed models, comma list, globs allowed (gpt-4o*)${clear}`)
    .option('--endpoints <list>', `allowed endpoints, comma list ("POST /v1/chat/completions")${clear}`)
    .option('--ips <list>', `allowed client IPs or CIDR ranges, comma list${clear}`)
    .option('--expires <when>', `expiry: a duration from now (30d, 12h, 90m, 2w) or an ISO date/time${update ? '; never removes it' : ''}`)
    .option('--notes <text>', 'owner or notes');
}

const KEY_ARG = '<key>';
const KEY_ARG_HELP = 'key id (key_…) or name';

function build(cli: Cli): Command {
  const program = new Command('proxygpt');
  program
    .description('ProxyGPT: a self-hosted OpenAI API gateway. Start it, and manage its proxy keys, usage and prices.')
    .version(VERSION, '-v, --version')
    .option('--db <path>', 'SQLite database to manage (default: PROXYGPT_DATABASE_URL, else ./data/proxygpt.db)')
    .option('--url <url>', 'manage a running server through its admin API instead, e.g. http://127.0.0.1:8000')
    .option('--admin-key <key>', 'admin key for --url (default: PROXYGPT_ADMIN_KEY, which keeps it out of the process list)')
    .option('--json', "print the admin API's JSON instead of tables")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => cli.io.out(text),
      writeErr: (text) => cli.io.err(text),
      outputError: (text, write) => write(`proxygpt: ${cli.redact(text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' '))}\n`),
    })
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Settings come from the environment and from .env in the working directory, as for the server.

Examples:
  proxygpt serve
  proxygpt keys create --name alice --rph 100 --rpd 1000 --tpd 200000 --usd-day 5 --models 'gpt-4o*' --expires 30d
  proxygpt keys list
  proxygpt keys update alice --rph none --usd-month 50
  proxygpt keys revoke alice
  proxygpt usage --key alice --since 7d
  proxygpt migrate --from ./data/proxygpt.db --to postgres://proxygpt:secret@db:5432/proxygpt
  proxygpt upstreams check
  PROXYGPT_ADMIN_KEY=… proxygpt --url http://127.0.0.1:8000 keys list`,
    );

  program
    .command('serve')
    .description('start the gateway, exactly like npm start (PROXYGPT_WORKERS > 1 starts a cluster)')
    .option('--port <port>', 'listen port (overrides PORT)')
    .option('--host <host>', 'listen address (overrides HOST)')
    .option('--workers <n>', 'worker processes (overrides PROXYGPT_WORKERS)')
    .action(async (opts: { port?: string; host?: string; workers?: string }, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      if (global.url !== undefined || global.adminKey !== undefined) {
        throw usageError('serve starts the server itself: --url and --admin-key do not apply (set PROXYGPT_ADMIN_KEY in the environment to turn the admin API on)');
      }
      // Flags win over the environment and .env; cluster workers inherit them through the environment.
      if (global.db !== undefined) process.env.PROXYGPT_DATABASE_URL = global.db;
      if (opts.port !== undefined) process.env.PORT = opts.port;
      if (opts.host !== undefined) process.env.HOST = opts.host;
      if (opts.workers !== undefined) process.env.PROXYGPT_WORKERS = opts.workers;
      const { start } = await import('../main.js');
      await start();
      cli.serving = true;
    });

  program
    .command('migrate')
    .description('copy a SQLite install (keys with their hashes, prices, usage history) into a Postgres store; safe to run again')
    .requiredOption('--from <path>', 'the SQLite database file (e.g. ./data/proxygpt.db)')
    .requiredOption('--to <url>', 'the Postgres store (postgres://user:password@host:5432/db)')
    .action(async (opts: { from: string; to: string }, command: Command) => {
      const { migrateToPostgres, migrateSummary } = await import('./migrate.js');
      const { report, target } = await migrateToPostgres({ ...opts, progress: (line) => cli.io.err(`proxygpt: ${line}\n`) });
      cli.io.out(command.optsWithGlobals<GlobalOptions>().json === true ? `${JSON.stringify(report, null, 2)}\n` : migrateSummary(report, opts.from, target));
      if (report.keys.conflicts.length > 0) throw new CliError(`${report.keys.conflicts.length} key(s) could not be copied: a key with the same name or secret is already in ${target}`);
    });

  const keys = program.command('keys').description('create, list, show, update, rotate, revoke and delete proxy keys');

  policyOptions(
    keys
      .command('create')
      .description('create a key; its secret is printed once')
      .requiredOption('--name <name>', 'unique name (letters, digits and . _ @ : + -)'),
    false,
  )
    .option('--disable', 'create it disabled')
    .action(async (flags: KeyFlags, command: Command) => {
      const body = keyBody(flags, Date.now());
      await cli.with(command, (b) => b.createKey(body), format.created, true);
    });

  keys
    .command('list')
    .description('list the stored keys')
    .action(async (_flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.listKeys(), (list) => format.keyList(list.data));
    });

  keys
    .command('show')
    .description("show a key's settings")
    .argument(KEY_ARG, KEY_ARG_HELP)
    .action(async (key: string, _flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.showKey(key), (view) => format.keyDetail(view));
    });

  policyOptions(keys.command('update').description("change a key's name, limits, lists, expiry or state").argument(KEY_ARG, KEY_ARG_HELP), true)
    .option('--name <name>', 'rename the key')
    .option('--no-expiry', 'remove the expiry')
    .option('--disable', 'disable the key (it stops working at once)')
    .option('--enable', 'enable the key again')
    .action(async (key: string, flags: KeyFlags, command: Command) => {
      const body = keyBody(flags, Date.now());
      if (Object.keys(body).length === 0) throw usageError('nothing to change: give at least one flag (see proxygpt keys update --help)');
      await cli.with(command, (b) => b.updateKey(key, body), format.updated);
    });

  keys
    .command('rotate')
    .description('give a key a new secret (printed once); the old one stops working at once')
    .argument(KEY_ARG, KEY_ARG_HELP)
    .action(async (key: string, _flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.rotateKey(key), format.rotated);
    });

  keys
    .command('revoke')
    .description('disable a key at once (keeps its history; undo with keys update --enable)')
    .argument(KEY_ARG, KEY_ARG_HELP)
    .action(async (key: string, _flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.revokeKey(key), format.revoked);
    });

  keys
    .command('delete')
    .description('delete a key for good (its usage records stay)')
    .argument(KEY_ARG, KEY_ARG_HELP)
    .action(async (key: string, _flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.deleteKey(key), format.deleted);
    });

  program
    .command('usage')
    .description('requests, tokens, USD and status codes per key over a time range (default: the last 30 days)')
    .option('--key <key>', 'one key (id or name; env keys are env-key-1, env-key-2, …)')
    .option('--since <when>', 'start: a duration back from now (7d, 12h) or an ISO time')
    .option('--until <when>', 'end: an ISO time (default: now)')
    .option('--upstream <name>', 'only the calls this upstream (its name in the upstreams file) answered')
    .action(async (flags: { key?: string; since?: string; until?: string; upstream?: string }, command: Command) => {
      const query = { key: flags.key, since: checkTime('--since', flags.since), until: checkTime('--until', flags.until), upstream: flags.upstream };
      await cli.with(
        command,
        (b) => b.usage(query),
        async (view, b) => format.usage(view, new Map((await b.listKeys()).data.map((k) => [k.id, k.name]))),
      );
    });

  const upstreams = program.command('upstreams').description('the upstreams file (PROXYGPT_UPSTREAMS): validate it, list it, probe each upstream');
  upstreams
    .command('list')
    .description('validate the upstreams file and list its upstreams (keys by their last 4 characters)')
    .option('--file <path>', 'the upstreams file (default: PROXYGPT_UPSTREAMS)')
    .action(async (flags: { file?: string }, command: Command) => {
      const { readUpstreams, upstreamsListJson, upstreamsListText } = await import('./upstreams.js');
      const config = readUpstreams(cli.io.env, flags.file);
      cli.io.out(command.optsWithGlobals<GlobalOptions>().json === true ? `${JSON.stringify(upstreamsListJson(config), null, 2)}\n` : upstreamsListText(config));
    });
  upstreams
    .command('check')
    .description("validate the upstreams file and probe each key of each upstream with GET /models; exits 1 when one fails")
    .option('--file <path>', 'the upstreams file (default: PROXYGPT_UPSTREAMS)')
    .option('--timeout <ms>', 'wait for each upstream at most this long', '10000')
    .action(async (flags: { file?: string; timeout: string }, command: Command) => {
      const { readUpstreams, checkUpstreams, checkText } = await import('./upstreams.js');
      const timeoutMs = Number(flags.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) throw usageError('--timeout must be a whole number of milliseconds from 1 to 600000');
      const rows = await checkUpstreams(readUpstreams(cli.io.env, flags.file), timeoutMs);
      cli.io.out(command.optsWithGlobals<GlobalOptions>().json === true ? `${JSON.stringify(rows, null, 2)}\n` : checkText(rows));
      const failed = rows.filter((r) => r.error !== null).length;
      if (failed > 0) throw new CliError(`${failed} of ${rows.length} upstream key${rows.length === 1 ? '' : 's'} failed the check`);
    });

  const prices = program.command('prices').description('model prices used for USD limits and usage (USD per million tokens)');

  prices
    .command('list')
    .description('bundled prices and the admin overrides')
    .action(async (_flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.prices(), format.priceList);
    });

  prices
    .command('set')
    .description("override a model's price (USD per million tokens)")
    .argument('<model>', 'model name or name prefix (gpt-4o covers gpt-4o-2024-08-06)')
    .requiredOption('--input <usd>', 'input tokens')
    .requiredOption('--output <usd>', 'output tokens')
    .option('--cached-input <usd>', 'cached input tokens (default: the input price)')
    .action(async (model: string, flags: { input: string; output: string; cachedInput?: string }, command: Command) => {
      const body = priceBody(flags);
      await cli.with(command, (b) => b.setPrice(model, body), format.priceSet, true);
    });

  prices
    .command('unset')
    .description('remove a price override (the bundled price applies again)')
    .argument('<model>', 'model name')
    .action(async (model: string, _flags: unknown, command: Command) => {
      await cli.with(command, (b) => b.unsetPrice(model), format.priceUnset);
    });

  return program;
}

/** Parses `argv` (as process.argv: node, script, args…) and runs the command. */
export async function run(argv: string[], io: CliIo): Promise<RunResult> {
  const cli = new Cli(io);
  const program = build(cli);
  try {
    await program.parseAsync(argv);
    return cli.serving ? 'serving' : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // The message (if any) was already written by outputError.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : EXIT_USAGE;
      return EXIT_USAGE;
    }
    if (err instanceof CliError) {
      cli.fail(err.message);
      return err.exitCode;
    }
    cli.fail(err instanceof Error ? err.message : String(err));
    return EXIT_FAILURE;
  }
}
