/**
 * Entry point: reads `.env` and the environment, validates the configuration (exit 2 with the
 * variable named on any problem), then serves. With PROXYGPT_WORKERS > 1 this process becomes a
 * cluster primary that prepares the store once, keeps the limits of all workers when the memory
 * limiter decides them (they ask it over IPC; see limits/cluster.ts), merges the workers' metrics
 * for /metrics (metrics/cluster.ts) and forks workers sharing one port and one store.
 *
 * `node dist/main.js` starts at once; `proxygpt serve` imports this module and calls start(). A
 * cluster worker re-runs whichever script the primary was started with (this one, or the CLI with
 * the same `serve` arguments), so both entries reach start() again in every worker.
 */
import cluster from 'node:cluster';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.js';
import { redactUrl } from './url-secrets.js';
import { createApp } from './app.js';
import { openStore } from './store/open.js';
import { StoreUnavailable } from './store/errors.js';
import { serveLimiter, type PrimaryChannel } from './limits/cluster.js';
import { startPrimaryLimiter } from './limits/cluster-primary.js';
import { decidedByPrimary } from './limits/create.js';
import { serveClusterMetrics } from './metrics/cluster.js';
import { metricsServed } from './metrics/setup.js';

function readConfig(): Config {
  dotenv.config({ quiet: true });
  try {
    const { config, warnings } = loadConfig(process.env);
    if (cluster.isPrimary) for (const warning of warnings) console.warn(`proxygpt: warning: ${warning}`);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`proxygpt: invalid configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

async function serve(config: Config): Promise<void> {
  const app = await createApp(config, {
    onFatal: () => void shutdown('fatal', 1),
    limitsPrimary: cluster.isWorker && decidedByPrimary(config.limiter) ? (process as PrimaryChannel) : undefined,
    metricsPrimary: cluster.isWorker ? process : undefined,
  });
  let closing = false;
  async function shutdown(reason: string, code = 0): Promise<void> {
    if (closing) return;
    closing = true;
    app.logger.info({ reason }, 'shutting down');
    // The grace period, then a few seconds to cut the calls left, settle and flush them.
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + 10_000);
    force.unref();
    await app.close();
    process.exit(code);
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  const address = await app.server.listen({ port: config.port, host: config.host });
  const upstreams = config.upstreams.file === null ? { upstream: config.openaiBaseUrl.origin } : { upstreams: config.upstreams.upstreams.map((u) => u.name), file: config.upstreams.file };
  app.logger.info({ address, ...upstreams, worker: cluster.isWorker ? cluster.worker?.id : undefined }, 'ProxyGPT listening');
}

async function runPrimary(config: Config): Promise<void> {
  // Migrates the store once, before the workers start (and fails here if it cannot be opened).
  await (await openStore(config.database)).close();
  // The primary keeps the limits of all workers (unless every process decides on its own).
  const limits = decidedByPrimary(config.limiter) ? await startPrimaryLimiter(config, (message) => console.error(`proxygpt: ${message}`)) : null;
  if (limits !== null) cluster.on('fork', (worker) => serveLimiter(limits.limiter, worker));
  // /metrics answers with the figures of every worker: the primary merges them (metrics/cluster.ts).
  if (metricsServed(config)) serveClusterMetrics(cluster);

  let stopping = false;
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`proxygpt: worker ${worker.process.pid} exited (${signal ?? code}); starting a new one`);
    cluster.fork();
  });
  const exit = async () => {
    await limits?.close(); // writes the limits journal
    process.exit(0);
  };
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => void exit(), config.shutdownGraceMs + 12_000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) void exit();
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`proxygpt: primary ${process.pid} started ${config.workers} workers on ${config.host}:${config.port}`);
}

/** Why the start failed, naming the setting at fault when it is the store (its password redacted). */
function startFailure(config: Config, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof StoreUnavailable && config.database.kind === 'postgres') {
    return `PROXYGPT_DATABASE_URL (${redactUrl(config.database.url)}): ${message}`;
  }
  return message;
}

/**
 * Starts the gateway from `.env` and the environment, exactly as `npm start` does: a cluster
 * primary when PROXYGPT_WORKERS > 1 (resolves once the workers are forked), else one server
 * (resolves once it listens). Exits the process with 2 on invalid configuration and 1 when the
 * server cannot start.
 */
export async function start(): Promise<void> {
  const config = readConfig();
  if (config.workers > 1 && cluster.isPrimary) {
    try {
      await runPrimary(config);
    } catch (err) {
      console.error(`proxygpt: could not start: ${startFailure(config, err)}`);
      process.exit(1);
    }
    return;
  }
  try {
    await serve(config);
  } catch (err) {
    console.error(`proxygpt: could not start: ${startFailure(config, err)}`);
    process.exit(1);
  }
}

/** True when Node was started with this file as its script (`node dist/main.js`, `tsx src/main.ts`). */
function isEntryScript(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  let self: string;
  try {
    self = realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
  // `node dist/main` resolves the extension itself.
  for (const candidate of [script, `${script}.js`, `${script}.ts`]) {
    try {
      if (realpathSync(candidate) === self) return true;
    } catch {
      // no such file: try the next spelling
    }
  }
  return false;
}

if (isEntryScript()) void start();
