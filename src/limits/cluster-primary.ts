/**
 * The cluster primary's limiter (PROXYGPT_WORKERS > 1 with the memory limiter): the one limiter
 * of this gateway, built by createLimiter and pruned on a timer; serveLimiter (cluster.ts) lets
 * every worker ask it.
 */
import type { Config } from '../config.js';
import type { Limiter } from '../contract.js';
import { createLimiter } from './create.js';
import { DAY_MS, globalRules, horizonOf } from './rules.js';

export async function startPrimaryLimiter(config: Config, log: (message: string) => void): Promise<{ limiter: Limiter; close(): Promise<void> }> {
  const built = await createLimiter(config.limiter, {
    holdTtlMs: config.upstreamTimeoutMs + 60_000,
    onError: (err) => log(`writing the limits journal failed: ${(err as Error).message}`),
    onLeaseLost: (err) => {
      log(`${err.message}; stopping`);
      process.kill(process.pid, 'SIGTERM');
    },
  });
  const { limiter } = built;
  const longest = Math.max(DAY_MS, ...globalRules(config).map((r) => r.windowMs));
  const timer = setInterval(() => {
    limiter.prune((series) => horizonOf(series, longest)).catch((err: Error) => log(`pruning old limit events failed: ${err.message}`));
  }, 60_000);
  timer.unref();
  return {
    limiter,
    async close() {
      clearInterval(timer);
      await built.close();
    },
  };
}
