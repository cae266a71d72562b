/**
 * Wires one gateway process together from a Config: the store (openStore: SQLite or Postgres),
 * the limiter (createLimiter: in memory; in a cluster worker, the primary's; transactional with
 * PROXYGPT_LIMITER=sqlite; or Redis), the upstreams (one pool each), usage recorder, metrics (when
 * /metrics is served), HTTP server, and the scheduled pruning of old events. `close()` undoes it all in order (stop accepting, flush records
 * and the limits journal, close pools and database).
 */
import type { FastifyInstance } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import type { Config } from './config.js';
import { urlPasswords } from './url-secrets.js';
import { KeyRing } from './auth/keys.js';
import { Policy } from './policy/policy.js';
import type { PrimaryChannel } from './limits/cluster.js';
import { createLimiter } from './limits/create.js';
import type { Limiter } from './contract.js';
import { systemClock, type Clock } from './limits/limiter.js';
import { openStore } from './store/open.js';
import { RefusalRecorder, UsageRecorder } from './store/recorder.js';
import type { UpstreamPool } from './proxy/forward.js';
import { UpstreamRouter } from './upstreams/router.js';
import { Gateway } from './gateway.js';
import { CallLimits } from './limits/call-limits.js';
import { DAY_MS, globalRules, horizonOf } from './limits/rules.js';
import { Authenticator } from './auth/authenticator.js';
import { Access } from './policy/access.js';
import { KeyAccessCache } from './policy/key-access.js';
import { PriceBook } from './metering/price-book.js';
import { stopTokenizer } from './metering/tokenizer.js';
import { Redactor } from './redact.js';
import { createLogger } from './log.js';
import { buildServer } from './server.js';
import { createMetrics, metricsServed } from './metrics/setup.js';
import type { PrimaryLink } from './metrics/cluster.js';
import { shuttingDown } from './errors.js';

/** After the grace period's calls were cut short: how long their answers get to reach the clients. */
const SHUTDOWN_CUT_MS = 1_000;

export interface AppOptions {
  clock?: Clock;
  /** Where log lines go (stdout by default); tests pass a capture stream. */
  logDestination?: DestinationStream;
  /** Usage records older than this are deleted by the scheduled prune. */
  usageRetentionMs?: number;
  pruneIntervalMs?: number;
  /** How long close() lets calls in flight finish before cutting their connections. */
  shutdownGraceMs?: number;
  /** The process must stop serving (its in-memory limiter lost the database to another). */
  onFatal?: (err: Error) => void;
  /** In a cluster worker: the channel to the primary, which keeps the limits for all workers. */
  limitsPrimary?: PrimaryChannel;
  /** In a cluster worker: the channel to the primary, which merges every worker's metrics for /metrics. */
  metricsPrimary?: PrimaryLink;
}

export interface App {
  server: FastifyInstance;
  gateway: Gateway;
  limiter: Limiter;
  /** The first upstream's pool (without an upstreams file: the only one). */
  upstreamPool: UpstreamPool;
  upstreams: UpstreamRouter;
  recorder: UsageRecorder;
  /** Calls refused before they were opened (every upstream out), for the dashboard's rollups. */
  refusals: RefusalRecorder;
  logger: Logger;
  close(): Promise<void>;
}

/** Everything the redactor keeps out of responses and log lines (each once; every upstream's keys included). */
export function secretsOf(config: Config): string[] {
  const all = [
    config.openaiApiKey,
    ...config.upstreams.upstreams.flatMap((u) => u.keys.map((k) => k.secret)),
    ...config.proxyKeys,
    ...(config.adminKey ? [config.adminKey] : []),
    ...(config.database.kind === 'postgres' ? urlPasswords(config.database.url) : []),
    ...(config.limiter.kind === 'redis' ? urlPasswords(config.limiter.url) : []),
  ];
  return [...new Set(all.filter((secret) => secret !== ''))];
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const redactor = new Redactor(secretsOf(config));
  const logger = createLogger(config.logLevel, redactor, options.logDestination);

  const store = await openStore(config.database, {
    log: (level, message, details) => logger[level](details ?? {}, message),
  });
  // How long the limiter keeps a series' events: its longest window (see rules.ts).
  const longestWindow = Math.max(DAY_MS, ...globalRules(config).map((r) => r.windowMs));
  let builtLimiter;
  try {
    builtLimiter = await createLimiter(config.limiter, {
      // Redis uses its own clock unless a test injects one; the other kinds this process's.
      clock: config.limiter.kind === 'redis' ? options.clock : clock,
      holdTtlMs: config.upstreamTimeoutMs + 60_000,
      primary: options.limitsPrimary,
      onError: (err) => logger.error({ err }, 'writing the limits journal failed'),
      onLeaseLost: (err) => {
        logger.fatal({ err }, 'another limiter took over this database: stopping');
        options.onFatal?.(err);
      },
      horizonMs: (series) => horizonOf(series, longestWindow),
      onSharedChange: (err) => {
        if (err === null) logger.warn('the Redis limiter answers again: limits are decided in Redis again');
        else if (config.limiter.kind === 'redis' && config.limiter.failMode === 'open') {
          logger.error({ err }, 'the Redis limiter is unreachable: FAILING OPEN, calls are served and counted by this instance alone until it answers');
        } else logger.error({ err }, 'the Redis limiter is unreachable: failing closed, calls are refused with 503 until it answers');
      },
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  const limiter = builtLimiter.limiter;
  const upstreams = new UpstreamRouter(config.upstreams, { timeoutMs: config.upstreamTimeoutMs, clock });
  const upstreamPool = upstreams.upstreams[0]!.pool;
  const recorder = new UsageRecorder(store, (err) => logger.error({ err }, 'writing usage records failed'), { log: logger });
  const refusals = new RefusalRecorder(store, (err) => logger.error({ err }, 'writing refusal records failed'), { log: logger });
  const prices = new PriceBook(store, clock);
  const metrics = metricsServed(config) ? createMetrics(config, prices, options.metricsPrimary) : null;
  const limits = new CallLimits({ limiter, prices, globalRules: globalRules(config), countMode: config.countMode, onRefused: metrics?.metrics.refused });
  const gateway = new Gateway({
    access: new Access(new Policy(config.allowedEndpoints, config.allowedModels), new KeyAccessCache()),
    limits,
    upstreams,
    pool: upstreamPool,
    redactor,
    defaultMaxTokens: config.defaultMaxTokens,
    onRefused: (refusal) => refusals.record(refusal),
  });
  metrics?.metrics.watch(gateway);
  const authenticator = new Authenticator(new KeyRing(config.proxyKeys), store, clock);
  const server = await buildServer({ config, gateway, authenticator, recorder, store, prices, redactor, logger, clock, limiterPing: builtLimiter.ping, metrics });

  const retention = options.usageRetentionMs ?? 90 * DAY_MS;
  const prune = async () => {
    try {
      const removed = (await limiter.prune((series) => horizonOf(series, longestWindow))) + (await store.pruneUsage(clock() - retention));
      if (removed > 0) logger.debug({ removed }, 'pruned old events');
    } catch (err) {
      logger.warn({ err }, 'pruning old events failed');
    }
  };
  const pruneTimer = setInterval(() => void prune(), options.pruneIntervalMs ?? 60_000);
  pruneTimer.unref();

  return {
    server,
    gateway,
    limiter,
    upstreamPool,
    upstreams,
    recorder,
    refusals,
    logger,
    async close() {
      clearInterval(pruneTimer);
      // Stop accepting; let calls in flight and open streams finish within the grace period. Then
      // cut them short: a stream ends with a `shutting_down` error event, a call still waiting
      // for its answer gets a 503; each settles as its path says. Whatever connection is left
      // after that (one that never sent a request) is closed.
      const closing = server.close();
      const graceMs = options.shutdownGraceMs ?? config.shutdownGraceMs;
      let cut: NodeJS.Timeout | undefined;
      const interrupt = setTimeout(() => {
        if (gateway.openCalls > 0) logger.warn({ calls: gateway.openCalls }, 'shutdown grace period over: ending the calls still open');
        gateway.interruptAll(shuttingDown());
        cut = setTimeout(() => server.server.closeAllConnections(), SHUTDOWN_CUT_MS);
        cut.unref();
      }, graceMs);
      interrupt.unref();
      await closing;
      clearTimeout(interrupt);
      clearTimeout(cut);
      await gateway.allSettled();
      await recorder.close();
      await refusals.close();
      await stopTokenizer();
      await upstreams.close();
      await builtLimiter.close();
      await store.close();
      metrics?.close();
    },
  };
}
