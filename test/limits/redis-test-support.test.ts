/**
 * How the test suite finds its Redis (test/support/redis.ts), in child processes pointed at a
 * port where nothing listens: with CI=true an unreachable Redis fails (the run must not pass
 * without the Redis suites); without CI it is skipped with one line naming the variable to set,
 * printed once however many test files (processes of one run) ask.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, ROOT } from '../support/server-process.js';

/** The once-per-run marker of the children's run (their parent, this process, stands for vitest). */
const marker = join(tmpdir(), `proxygpt-test-notice-redis-${process.pid}`);

/** Asks testRedisUrl() `times` times in one child process. */
async function probe(env: Record<string, string | undefined>, times = 1) {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const script = `
    const { testRedisUrl } = await import('./test/support/redis.ts');
    for (let i = 0; i < ${times}; i++) console.log('answer:', await testRedisUrl());
  `;
  const childEnv: Record<string, string | undefined> = { ...process.env, PROXYGPT_TEST_REDIS_URL: url, ...env };
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: childEnv as NodeJS.ProcessEnv, encoding: 'utf8' });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr, url };
}

describe('the test Redis', () => {
  it('fails the run under CI=true when Redis is unreachable', async () => {
    const { status, stderr, url } = await probe({ CI: 'true' });
    expect(status).not.toBe(0);
    expect(stderr).toContain(`Redis at ${url} (PROXYGPT_TEST_REDIS_URL) is unreachable, and CI=true`);
  });

  it('skips with one line per run when Redis is unreachable outside CI', async () => {
    rmSync(marker, { force: true });
    try {
      const first = await probe({ CI: undefined }, 2);
      const second = await probe({ CI: undefined }); // another test file of the same run
      for (const child of [first, second]) expect(child.status).toBe(0);
      expect(first.stdout.match(/^answer: null$/gm)).toHaveLength(2);
      expect(second.stdout.match(/^answer: null$/gm)).toHaveLength(1);
      const lines = (first.stderr + second.stderr).split('\n').filter((l) => l.includes('skipping the Redis suites'));
      expect(lines).toEqual([`[proxygpt tests] Redis at ${first.url} (PROXYGPT_TEST_REDIS_URL) is unreachable: skipping the Redis suites`]);
    } finally {
      rmSync(marker, { force: true });
    }
  });
});
