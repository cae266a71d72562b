/**
 * Builds the HTTP app: request state, input rules, error shape, call recording, CORS, docs, and
 * the route modules, in the order Fastify needs them. Each route module gets only what it uses.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Gateway } from './gateway.js';
import type { Authenticator } from './auth/authenticator.js';
import type { PriceBook } from './metering/price-book.js';
import type { Store } from './contract.js';
import type { UsageRecorder } from './store/recorder.js';
import type { Redactor } from './redact.js';
import { clientErrorHandler, expectationHandler, frameworkErrorHandler, installErrorHandling } from './http/error-handler.js';
import { ConnectionLifecycle, serverTimeouts } from './http/connections.js';
import { shuttingDown } from './errors.js';
import { installRequestInput } from './http/request-input.js';
import { everyAnswerHeaders, nextRequestId } from './http/request-id.js';
import { installCallRecording } from './http/call-record.js';
import { declareRequestState } from './http/request-state.js';
import { registerDocsPages, registerOpenApi } from './routes/docs.js';
import { registerV1Routes } from './routes/v1.js';
import { registerLegacyRoute } from './routes/legacy.js';
import { registerRateLimitRoute } from './routes/ratelimit.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { envKeyId } from './auth/keys.js';
import type { MetricsSetup } from './metrics/setup.js';
import { KeyService } from './keys/service.js';
import { VERSION } from './version.js';

export interface ServerOptions {
  config: Config;
  /** Opens the proxied calls (/v1 and the legacy route). */
  gateway: Gateway;
  /** Checks proxy keys (every route that takes one). */
  authenticator: Authenticator;
  /** Writes each proxied call's usage record. */
  recorder: UsageRecorder;
  store: Store;
  prices: PriceBook;
  redactor: Redactor;
  logger: Logger;
  clock: () => number;
  /** /readyz: the limiter's own check when it lives outside this process (Redis). */
  limiterPing?: () => Promise<void>;
  /** /metrics and what it counts; null: not served (see metricsServed). */
  metrics?: MetricsSetup | null;
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const { config, gateway, authenticator, recorder, store, prices, redactor, logger, clock } = options;
  const timeouts = serverTimeouts(config.requestTimeoutMs, config.keepAliveTimeoutMs);
  const app = Fastify({
    http: timeouts.http,
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxBodyBytes,
    genReqId: nextRequestId,
    requestIdHeader: false,
    trustProxy: config.trustProxy,
    // The 503 while closing is ours (below), in the error shape; Fastify's is not.
    return503OnClosing: false,
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler(config.insecureDebug, redactor),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  }) as unknown as FastifyInstance;

  // Node answers an unknown Expect itself (an empty 417) unless someone listens.
  app.server.on('checkExpectation', expectationHandler(nextRequestId));
  const connections = new ConnectionLifecycle(app.server);
  // Past the cap Node closes a new connection at once (no HTTP is spoken on it yet).
  if (config.maxConnections !== null) app.server.maxConnections = config.maxConnections;
  app.addHook('preClose', (done) => {
    connections.beginShutdown();
    done();
  });

  declareRequestState(app);
  installErrorHandling(app, config.insecureDebug, redactor);
  // First, so that every answer carries its id. Hooks on every request take a callback, not an
  // async function: no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(everyAnswerHeaders(request.id));
    // A request that reached a connection kept open while the gateway stops (Fastify closes it after).
    done(connections.isClosing ? shuttingDown() : undefined);
  });
  installRequestInput(app, config.maxBodyBytes);
  const metrics = options.metrics ?? null;
  installCallRecording(app, recorder, clock, metrics?.metrics ?? null);

  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      exposedHeaders: [
        'x-ratelimit-limit-requests',
        'x-ratelimit-remaining-requests',
        'x-ratelimit-reset-requests',
        'retry-after',
        'retry-after-ms',
        'x-proxygpt-request-id',
      ],
    });
  }

  await registerOpenApi(app, VERSION);
  const keys = { authenticator, access: gateway.access };
  registerV1Routes(app, { endpoints: config.allowedEndpoints, keys, gateway });
  registerLegacyRoute(app, { model: config.legacyModel, keys, gateway });
  registerRateLimitRoute(app, { keys, limits: gateway.limits });
  registerHealthRoutes(app, { store: () => store.ping(), ...(options.limiterPing === undefined ? {} : { limiter: options.limiterPing }) });
  const keyService = new KeyService(store, config, clock);
  registerAdminRoutes(app, config.adminKey, keyService, prices, clock, gateway.upstreams);
  registerDashboardRoutes(app, {
    adminKey: config.adminKey,
    keys,
    store,
    keyService,
    limits: gateway.limits,
    envKeyIds: config.proxyKeys.map((_, i) => envKeyId(i)),
    clock,
  });
  // `admin` without an admin key is not served (an unknown route), never open.
  const metricsAccess = config.metrics === 'open' ? 'open' : config.metrics === 'admin' && config.adminKey !== null ? { admin: config.adminKey } : null;
  if (metrics !== null && metricsAccess !== null) registerMetricsRoute(app, { access: metricsAccess, scrape: metrics.scrape, contentType: metrics.contentType });
  await registerDocsPages(app);
  return app;
}
