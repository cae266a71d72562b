/**
 * The Vitest configuration of mutation runs (`npm run mutate`, see stryker.config.mjs): the normal
 * one minus the tests that run the product in a child process (the CLI, `src/main.ts`, cluster
 * workers). Stryker switches a mutant on inside the test's own process, so a child process always
 * runs the original code: those tests cannot kill a mutant, and each costs seconds of process
 * start-up per run. Test files share their module instances (`isolate: false`): each mutant run
 * then imports the product once instead of once per file (a whole run here: 44 s instead of about
 * 2 min), and a mutant is switched on through a global, not by reloading modules.
 */
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      isolate: false,
      exclude: [
        ...configDefaults.exclude,
        'test/cli/**',
        'test/config-process.test.ts',
        'test/keys/lifecycle-workers.test.ts',
        'test/limits/limiter-processes.test.ts',
        'test/limits/workers.test.ts',
        'test/metrics/metrics-workers.test.ts',
      ],
    },
  }),
);
