/**
 * createLimiter builds the configured limiter: memory (decides alone, journaled to the file its
 * config names, exclusive), a cluster worker's ClusterLimiter (asks the primary; opens nothing),
 * sqlite (transactional; several limiters share one file), and refuses Redis until it is wired.
 * Checked through the Limiter interface: counts survive a restart on the same journal, are
 * shared where they should be, and stay apart where they should.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LimitRule } from '../../src/contract.js';
import { ClusterLimiter, serveLimiter } from '../../src/limits/cluster.js';
import { createLimiter, decidedByPrimary, type LimiterHandle } from '../../src/limits/create.js';
import { MemoryLimiter } from '../../src/limits/memory.js';
import { LimiterConflictError } from '../../src/limits/ownership.js';
import { SqliteLimiter } from '../../src/limits/sqlite.js';
import { ipcPair } from '../limits/fake-ipc.js';
import { tempDir } from '../helpers.js';
import { FailModeLimiter } from '../../src/limits/fail-mode.js';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../support/redis.js';

const redisUrl = await testRedisUrl();

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 15, 12);
const clock = () => T0;
const hourly: LimitRule[] = [{ name: 'hourly', series: 'requests', unit: 'requests', windowMs: HOUR, limit: 5 }];
const oneRequest = { requests: { amount: 1, hold: false } };
const deps = { clock, holdTtlMs: HOUR };

let dir: string;
const open: LimiterHandle[] = [];
beforeEach(() => {
  dir = tempDir();
});
afterEach(async () => {
  for (const handle of open.splice(0).reverse()) await handle.close();
  rmSync(dir, { recursive: true, force: true });
});

async function build(...args: Parameters<typeof createLimiter>): Promise<LimiterHandle> {
  const handle = await createLimiter(...args);
  open.push(handle);
  return handle;
}

const used = async (handle: LimiterHandle) => (await handle.limiter.peek(hourly))[0]!.used;

describe('createLimiter', () => {
  it('memory: a MemoryLimiter journaling to journalPath; its counts come back after a restart there, not elsewhere', async () => {
    const journalPath = join(dir, 'journal', 'limits.db');
    const first = await createLimiter({ kind: 'memory', journalPath }, deps);
    expect(first.limiter).toBeInstanceOf(MemoryLimiter);
    expect(existsSync(journalPath)).toBe(true);
    for (let i = 0; i < 3; i++) expect((await first.limiter.reserve(hourly, oneRequest)).admitted).toBe(true);
    await first.close();

    expect(await used(await build({ kind: 'memory', journalPath }, deps))).toBe(3);
    expect(await used(await build({ kind: 'memory', journalPath: join(dir, 'other.db') }, deps))).toBe(0);
  });

  it('memory: decides alone, so a second one on the same journal is refused', async () => {
    const journalPath = join(dir, 'limits.db');
    await build({ kind: 'memory', journalPath }, deps);
    await expect(createLimiter({ kind: 'memory', journalPath }, deps)).rejects.toThrow(LimiterConflictError);
  });

  it('memory in a cluster worker: a ClusterLimiter that asks the primary and opens no journal of its own', async () => {
    const journalPath = join(dir, 'limits.db');
    const pair = ipcPair();
    const worker = await build({ kind: 'memory', journalPath: join(dir, 'never-opened.db') }, { ...deps, primary: pair.worker });
    expect(worker.limiter).toBeInstanceOf(ClusterLimiter);
    expect(existsSync(join(dir, 'never-opened.db'))).toBe(false);

    const primary = await build({ kind: 'memory', journalPath }, deps);
    serveLimiter(primary.limiter, pair.primary);
    expect((await worker.limiter.reserve(hourly, oneRequest)).admitted).toBe(true);
    expect(await used(primary)).toBe(1);
  });

  it('sqlite: a SqliteLimiter; several on one file count together (the point of the kind)', async () => {
    const path = join(dir, 'shared.db');
    const a = await build({ kind: 'sqlite', path }, deps);
    const b = await build({ kind: 'sqlite', path }, deps);
    expect(a.limiter).toBeInstanceOf(SqliteLimiter);
    await a.limiter.reserve(hourly, oneRequest);
    await b.limiter.reserve(hourly, oneRequest);
    expect(await used(a)).toBe(2);
    expect(await used(b)).toBe(2);
  });

  it('sqlite ignores a primary channel: every process decides on its own', async () => {
    const handle = await build({ kind: 'sqlite', path: join(dir, 'x.db') }, { ...deps, primary: ipcPair().worker });
    expect(handle.limiter).toBeInstanceOf(SqliteLimiter);
  });

  it.skipIf(redisUrl === null)('redis: the Redis limiter behind the fail mode, on its prefix; ping answers', async () => {
    const prefix = uniquePrefix('factory');
    try {
      for (const failMode of ['closed', 'open'] as const) {
        const handle = await build({ kind: 'redis', url: redisUrl!, failMode, timeoutMs: 500, prefix }, deps);
        expect(handle.limiter).toBeInstanceOf(FailModeLimiter);
        await expect(handle.ping!()).resolves.toBeUndefined();
        expect((await handle.limiter.reserve(hourly, oneRequest)).admitted).toBe(true);
      }
      // Both limiters counted in the same Redis series (the injected clock stands for Redis' own).
      const handle = await build({ kind: 'redis', url: redisUrl!, failMode: 'closed', timeoutMs: 500, prefix }, deps);
      expect(await used(handle)).toBe(2);
    } finally {
      await deleteKeys(redisUrl!, prefix);
    }
  });

  it('decidedByPrimary: only the memory kind is kept by the cluster primary', () => {
    expect(decidedByPrimary({ kind: 'memory', journalPath: 'x' })).toBe(true);
    expect(decidedByPrimary({ kind: 'sqlite', path: 'x' })).toBe(false);
    expect(decidedByPrimary({ kind: 'redis', url: 'redis://h', failMode: 'open', timeoutMs: 1, prefix: 'p:' })).toBe(false);
  });
});
