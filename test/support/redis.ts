/**
 * Redis for tests. `testRedisUrl()` finds the machine's Redis (127.0.0.1:6379, or
 * PROXYGPT_TEST_REDIS_URL): unreachable with CI=true it throws, so the run fails; unreachable
 * otherwise it returns null and the Redis suites skip, with one line on the console for the
 * whole run. `uniquePrefix()` and `deleteKeys()` keep parallel test files (and other people's
 * runs on the same Redis) apart. `RedisServer` starts a redis-server of its own on a free port,
 * without persistence, that a fault test can stop and start again on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './server-process.js';

export const TEST_REDIS_URL = process.env.PROXYGPT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether a Redis answers PING at `url` within a second. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Prints `line` once per test run (test files run in child processes of one vitest process). */
function oncePerRun(tag: string, line: string): void {
  const marker = join(tmpdir(), `proxygpt-test-notice-${tag}-${process.ppid}`);
  try {
    closeSync(openSync(marker, 'wx'));
  } catch {
    return; // printed already in this run
  }
  console.warn(line);
}

let probed: Promise<string | null> | undefined;

/** The test Redis' URL; null (skip) when it is unreachable outside CI; throws under CI=true. */
export function testRedisUrl(): Promise<string | null> {
  probed ??= (async () => {
    if (await redisAnswers(TEST_REDIS_URL)) return TEST_REDIS_URL;
    const where = `Redis at ${TEST_REDIS_URL} (PROXYGPT_TEST_REDIS_URL)`;
    if (process.env.CI === 'true') throw new Error(`${where} is unreachable, and CI=true: the Redis suites must run`);
    oncePerRun('redis', `[proxygpt tests] ${where} is unreachable: skipping the Redis suites`);
    return null;
  })();
  return probed;
}

/** A key prefix no other test, file or run uses. */
export function uniquePrefix(label: string): string {
  return `proxygpt-test:${label}:${process.pid}-${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix`; returns how many. */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    let deleted = 0;
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await client.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}

/** A plain client for a test to look at keys with; disconnect it after. */
export function inspector(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  return client;
}

/** A redis-server of the test's own (no persistence) that can be stopped and started on the same port. */
export class RedisServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly password: string | undefined,
  ) {}

  /** Starts one on a free port; with `password`, clients must give it (`requirepass`). */
  static async start(options: { password?: string } = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options.password);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://${this.password === undefined ? '' : `:${encodeURIComponent(this.password)}@`}127.0.0.1:${this.port}`;
  }

  /** Starts it (again) and waits until it answers PING (at most 10 s). */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error('redis-server is running already');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (this.password !== undefined) args.push('--requirepass', this.password);
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    const giveUpAt = Date.now() + 10_000;
    while (!(await redisAnswers(this.url))) {
      if (this.child !== child) throw new Error(`redis-server on port ${this.port} exited at start`);
      if (Date.now() > giveUpAt) throw new Error(`redis-server on port ${this.port} did not answer within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops it (SIGKILL: as a crash would) and waits until the process is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Freezes it (SIGSTOP): connections stay open and nothing answers, as a stalled server. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}
