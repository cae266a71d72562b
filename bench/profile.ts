/**
 * CPU profile of the gateway under load: `npx tsx bench/profile.ts [seconds] [--stored]`
 * (`--stored`: calls with a metered stored key, the common team set-up, instead of the env key;
 * `--workers=2`: PROXYGPT_WORKERS, each process profiled, the cluster primary and every worker;
 * BENCH_PROFILE_ENV='{"PROXYGPT_REDIS_URL":"redis://127.0.0.1:6379"}' adds settings, e.g. a backend).
 * Starts the mock and the gateway (dist/main.js under `node --cpu-prof`, same settings as the
 * bench), runs autocannon at 32 connections (BENCH_PROFILE_CONNECTIONS) for the given seconds
 * (default 10), stops the gateway gracefully so V8 writes the profile, and prints the top self
 * time by function and by module group. The .cpuprofile is kept in bench/results/ (git-ignored);
 * open it in Chrome DevTools or speedscope for a flame graph.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildIfStale, createStoredKey, ROOT, startGateway, startMock } from './lib/services.js';
import { guardChildren, stopAll, stopChild } from './lib/procs.js';
import { gatewayTarget } from './lib/targets.js';
import { cannon } from './lib/load.js';
import { renderProfile, summariseProfile } from './lib/cpuprofile.js';

const seconds = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? process.env.BENCH_PROFILE_SECONDS ?? 10);
const stored = process.argv.includes('--stored');
const workers = Number(/^--workers=(\d+)$/.exec(process.argv.find((a) => a.startsWith('--workers=')) ?? '')?.[1] ?? 1);
const connections = Number(process.env.BENCH_PROFILE_CONNECTIONS ?? 32);
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'warn';
const dir = mkdtempSync(join(tmpdir(), 'proxygpt-profile-'));
guardChildren((seconds + 120) * 1000, (reason) => console.error(`profile: ABORTED: ${reason}`));

try {
  console.error(`profile: ${buildIfStale(process.argv.includes('--build'))}`);
  const mock = await startMock(dir);
  const profDir = join(dir, 'prof');
  const env = JSON.parse(process.env.BENCH_PROFILE_ENV ?? '{}') as Record<string, string>;
  const gw = await startGateway(mock.port, dir, { workers, logLevel, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`], name: 'gateway-profiled', env });
  const target = stored ? gatewayTarget(gw.port, 'gateway-stored', undefined, await createStoredKey(gw.port)) : gatewayTarget(gw.port);
  await cannon(target, connections, 1, false);
  console.error(`profile: ${connections} connections for ${seconds} s with ${stored ? 'a metered stored key' : 'the env key'} (LOG_LEVEL=${logLevel})`);
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const outcome = await cannon(target, connections, seconds, false);
  const toUs = Number(process.hrtime.bigint() / 1000n);
  console.error(`profile: ${(outcome.ok / outcome.seconds).toFixed(0)} req/s under the profiler, ${outcome.non2xx} non-2xx, ${outcome.errors} errors`);
  await stopChild(gw.child, 15_000);
  // One profile per process (with workers: the primary and each worker), largest first.
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error('the gateway wrote no .cpuprofile (did it exit gracefully?)');
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const summaries = files.map((file, i) => {
    const summary = renderProfile(summariseProfile(join(profDir, file), ROOT, 25, { fromUs, toUs }));
    const name = files.length === 1 ? `gateway-${stamp}` : `gateway-${stamp}-process-${i + 1}`;
    copyFileSync(join(profDir, file), join(out, `${name}.cpuprofile`));
    return `${files.length === 1 ? '' : `# process ${i + 1} of ${files.length} (${file})\n`}${summary}`;
  });
  const text = summaries.join('\n\n');
  console.log(text);
  writeFileSync(join(out, `profile-${stamp}.txt`), `${text}\n`);
  console.error(`profile: kept ${files.length} .cpuprofile file(s) and profile-${stamp}.txt in bench/results/`);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
