/**
 * Entry point: reads `.env` and the environment, validates the configuration (exit 1 with the
 * variable named on any problem), then serves. With PROXYGPT_WORKERS > 1 this process becomes a
 * cluster primary that prepares the database once and forks workers sharing one port and one
 * SQLite file; limits stay exact across them (BEGIN IMMEDIATE serialises the limiter).
 */
import cluster from 'node:cluster';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createApp } from './app.js';
import { openSqlite } from './store/sqlite-db.js';
import { migrateSqliteStore } from './store/sqlite.js';
import { migrateSqliteLimiter } from './limits/sqlite.js';

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
  const app = await createApp(config);
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await app.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  const address = await app.server.listen({ port: config.port, host: config.host });
  app.logger.info({ address, upstream: config.openaiBaseUrl.origin, worker: cluster.isWorker ? cluster.worker?.id : undefined }, 'ProxyGPT listening');
}

function runPrimary(config: Config): void {
  const db = openSqlite(config.databasePath);
  migrateSqliteStore(db);
  migrateSqliteLimiter(db);
  db.close();

  let stopping = false;
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`proxygpt: worker ${worker.process.pid} exited (${signal ?? code}); starting a new one`);
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 11_000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`proxygpt: primary ${process.pid} started ${config.workers} workers on ${config.host}:${config.port}`);
}

const config = readConfig();
if (config.workers > 1 && cluster.isPrimary) runPrimary(config);
else
  serve(config).catch((err: unknown) => {
    console.error(`proxygpt: could not start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
