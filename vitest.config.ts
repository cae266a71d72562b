/**
 * The test suite's configuration (`npm test`). Test files run in two forked processes that each
 * run file after file with their module instances shared (`isolate: false`): every file then
 * imports the product once per process instead of once per file, which took about a third of
 * the suite's time (on this 2-core machine 174 s instead of 263–285 s). No test file may depend on
 * a module state of its own: each builds its gateway, stores and limiters itself, and a file that
 * needs a fresh module instance (a mocked import) asks for it with `vi.resetModules()`.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    isolate: false,
  },
});
