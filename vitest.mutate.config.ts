/**
 * The Vitest configuration of mutation runs (`npm run mutate`, see stryker.config.mjs): the normal
 * one minus the tests that run the product in a child process (the CLI, `src/main.ts`, cluster
 * workers). Stryker switches a mutant on inside the test's own process, so a child process always
 * runs the original code: those tests cannot kill a mutant, and each costs seconds of process
 * start-up per run.
 */
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [
        ...configDefaults.exclude,
        'test/cli/**',
        'test/config-process.test.ts',
        'test/keys/lifecycle-workers.test.ts',
        'test/limits/limiter-processes.test.ts',
        'test/limits/workers.test.ts',
      ],
    },
  }),
);
