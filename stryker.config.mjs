// @ts-check
/**
 * Mutation testing (`npm run mutate`; slow, not part of `npm test` or CI): StrykerJS changes the
 * security and accounting core one small edit at a time and checks that some test fails. Scope:
 * authentication, policy, header rules, redaction, the window arithmetic, the limiters' reserve /
 * commit / release paths, and metering. The limiters' files also hold journaling, pruning and
 * leases, which are out of scope: their methods are picked by name below (not by fixed line
 * numbers, which would drift as the files change).
 */
import { readFileSync } from 'node:fs';

/**
 * `file:start-end` (1-based, inclusive) for each named member of a class in `file`: a method
 * (`reserve` matches `  async reserve(`) or a property the constructor assigns (`this.commitTx`
 * matches `    this.commitTx = `), from its first line to the first later line with the same
 * indentation that starts with `}` (its closing brace, or `});`). Throws when one is missing.
 * @param {string} file
 * @param {...string} names
 */
function members(file, ...names) {
  const lines = readFileSync(new URL(file, import.meta.url), 'utf8').split('\n');
  return names.map((name) => {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const declaration = name.startsWith('this.')
      ? new RegExp(`^\\s+${escaped}\\s*=`)
      : new RegExp(`^  (?:(?:private|protected|public|static|async)\\s+)*${escaped}\\s*[(<]`);
    const start = lines.findIndex((l) => declaration.test(l));
    if (start < 0) throw new Error(`stryker.config.mjs: ${name} not found in ${file}`);
    const indent = /^\s*/.exec(lines[start] ?? '')?.[0] ?? '';
    const end = lines.findIndex((l, i) => i > start && l.startsWith(`${indent}}`));
    if (end < 0) throw new Error(`stryker.config.mjs: the end of ${name} not found in ${file}`);
    return `${file}:${start + 1}-${end + 1}`;
  });
}

/**
 * The scope in two groups, to run one at a time (`npm run mutate:security`, `mutate:accounting`;
 * `npm run mutate` runs both): each group keeps its own reports and incremental file under
 * reports/mutation/<group>/, so a short run on one group does not forget the other's results.
 */
const GROUPS = {
  security: ['src/auth/**/*.ts', 'src/policy/**/*.ts', 'src/proxy/headers.ts', 'src/redact.ts', 'src/limits/window-math.ts', 'src/limits/limiter.ts'],
  accounting: [
    ...members('src/limits/memory.ts', 'state', 'append', 'seek', 'view', 'firstTsAtCum', 'judge', 'reserve', 'takeHolds', 'commit', 'release', 'peek'),
    ...members('src/limits/sqlite.ts', 'this.commitTx', 'this.releaseTx', 'seriesRow', 'append', 'evaluate', 'reserveNow', 'reserve', 'flushReserves', 'commit', 'release'),
    'src/limits/expired-holds.ts',
    'src/metering/**/*.ts',
  ],
};
const group = process.env.MUTATE_GROUP ?? 'all';
if (group !== 'all' && !(group in GROUPS)) throw new Error(`stryker.config.mjs: MUTATE_GROUP must be ${Object.keys(GROUPS).join(' or ')}`);
const scope = group === 'all' ? [...GROUPS.security, ...GROUPS.accounting] : GROUPS[/** @type {keyof typeof GROUPS} */ (group)];

/**
 * MUTATE_FILES (comma-separated source files, e.g. `src/limits/memory.ts,src/limits/sqlite.ts`)
 * narrows the group to those files, keeping each file's in-scope part: its member ranges when the
 * group names members of it, the whole file when it lies under one of the group's globs. A file
 * outside the group throws. Such a run keeps its reports apart, under
 * reports/mutation/<group>/<file names joined by +>/, so it forgets nothing of the group's own.
 * @param {string[]} entries
 * @param {string} files
 */
function narrow(entries, files) {
  return files.split(',').map((f) => f.trim()).filter((f) => f !== '').flatMap((file) => {
    const ranges = entries.filter((e) => e.startsWith(`${file}:`));
    if (ranges.length > 0) return ranges;
    const underGlob = entries.some((e) => e === file || (e.includes('*') && file.startsWith(e.slice(0, e.indexOf('*')))));
    if (!underGlob) throw new Error(`stryker.config.mjs: MUTATE_FILES: ${file} is not in the ${group} scope`);
    return [file];
  });
}
const only = process.env.MUTATE_FILES ?? '';
const mutate = only === '' ? scope : narrow(scope, only);
const subset = only === '' ? '' : `/${only.split(',').map((f) => f.trim().replace(/^.*\//, '').replace(/\.ts$/, '')).filter((f) => f !== '').join('+')}`;
const reports = `reports/mutation/${group}${subset}`;
// The survivors reporter (stryker-survivors.mjs) writes beside the other reports.
process.env.MUTATE_REPORTS = reports;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: {
    configFile: 'vitest.mutate.config.ts',
    // Many tests reach the code through the HTTP server (createApp), not by importing it: let
    // per-test coverage, not Vite's import graph, pick the tests of each mutant.
    related: false,
  },
  coverageAnalysis: 'perTest',
  // A static mutant is one only module loading or a beforeAll hook runs (a module-level constant,
  // code that only builds the app): Stryker can tell no test apart for it, so it runs the whole
  // suite with it, a minute or more each. By default they are reported as ignored;
  // MUTATE_STATIC=1 tests them too (incremental mode then runs only those).
  ignoreStatic: process.env.MUTATE_STATIC !== '1',
  mutate,
  // Only what the tests need goes into the sandbox.
  ignorePatterns: ['dist', 'data', 'coverage', 'bench/results', 'reports', '*.db', '*.db-wal', '*.db-shm', '.env'],
  incremental: true,
  incrementalFile: `${reports}/stryker-incremental.json`,
  plugins: ['@stryker-mutator/*', './stryker-survivors.mjs'],
  reporters: ['html', 'clear-text', 'json', 'progress', 'survivors'],
  htmlReporter: { fileName: `${reports}/mutation.html` },
  jsonReporter: { fileName: `${reports}/mutation.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  concurrency: 2,
  // The tests talk HTTP over loopback on two shared cores: leave room before calling a mutant a
  // timeout (a real endless loop is stopped sooner, by Stryker's hit counter).
  timeoutMS: 30_000,
  timeoutFactor: 2,
  // The first, unmutated run of the whole suite (3 min on idle cores) took over Stryker's default
  // 5 min while other work used the cores.
  dryRunTimeoutMinutes: 20,
};
