/**
 * /dashboard: the usage page (its HTML, styles, scripts and uPlot, all served from here) and the
 * JSON API it reads, under /dashboard/api, for scripts too. Sign-in is a key sent as
 * `Authorization: Bearer`: the admin key (PROXYGPT_ADMIN_KEY; refused when none is configured)
 * sees every key and may disable or enable stored keys; a proxy key (through the authenticator, so
 * a disabled or expired key gets the usual 401; the key's IP allowlist applies) sees only its own
 * key, every filter applied here on the server. No cookie is set, so there is nothing to forge
 * across sites. Every answer carries a strict Content-Security-Policy (no inline script or style,
 * nothing from another origin, never framed), `Referrer-Policy: no-referrer` and `no-store`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/authenticator.js';
import type { Store } from '../contract.js';
import { adminOnly } from '../errors.js';
import { hasAdminKey } from '../http/admin-key.js';
import { authorizationOf, type RequireProxyKeyOptions } from '../http/require-proxy-key.js';
import type { KeyService } from '../keys/service.js';
import type { CallLimits } from '../limits/call-limits.js';
import { loadDashboardAssets } from '../dashboard/assets.js';
import { KeyTable } from '../dashboard/key-rows.js';
import { buildOverview, rollupQuery } from '../dashboard/overview.js';
import { parseRange, rangeWindow } from '../dashboard/ranges.js';
import { keyIdParams, keyRowSchema, keysSchema, overviewSchema, rangeQuery, sessionSchema } from '../dashboard/schemas.js';

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export interface DashboardRouteOptions {
  /** PROXYGPT_ADMIN_KEY; null: only key holders can sign in. */
  adminKey: string | null;
  keys: Pick<RequireProxyKeyOptions, 'authenticator' | 'access'>;
  store: Pick<Store, 'rollups' | 'listKeys' | 'getKey' | 'lastUsed'>;
  /** Disables and enables keys (as the admin API does). */
  keyService: Pick<KeyService, 'update'>;
  /** Each key's limits as they stand (peeked). */
  limits: Pick<CallLimits, 'status'>;
  /** The environment keys' ids (`env-key-1`, …). */
  envKeyIds: readonly string[];
  clock: () => number;
}

/** Who signed in: the admin, or the holder of one proxy key. */
type Viewer = { role: 'admin' } | { role: 'key'; principal: Principal };

const viewers = new WeakMap<FastifyRequest, Viewer>();
const viewerOf = (request: FastifyRequest): Viewer => viewers.get(request)!;

export function registerDashboardRoutes(app: FastifyInstance, options: DashboardRouteOptions): void {
  const { adminKey, keys, store, keyService, clock } = options;
  const assets = loadDashboardAssets();
  const table = new KeyTable({ store, limits: options.limits, envKeyIds: options.envKeyIds, clock });

  void app.register(
    async (dashboard) => {
      dashboard.addHook('onRequest', (_request, reply, done) => {
        reply.headers(SECURITY_HEADERS);
        done();
      });
      const page = (_request: FastifyRequest, reply: FastifyReply) => reply.type(assets.page.type).send(assets.page.body);
      dashboard.get('/', { schema: { hide: true } }, page);
      dashboard.get<{ Params: { name: string } }>('/assets/:name', { schema: { hide: true } }, async (request, reply) => {
        const asset = assets.files.get(request.params.name);
        if (asset === undefined) return reply.callNotFound();
        return reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
      });

      void dashboard.register(
        async (api) => {
          api.addHook('onRequest', async (request) => {
            if (adminKey !== null && hasAdminKey(request.raw, adminKey)) {
              viewers.set(request, { role: 'admin' });
              return;
            }
            const principal = await keys.authenticator.authenticate(authorizationOf(request.raw));
            keys.access.checkIp(principal, request.ip);
            viewers.set(request, { role: 'key', principal });
          });
          const common = { tags: ['Dashboard'], security: [{ adminKey: [] as string[] }, { proxyKey: [] as string[] }] as Array<Record<string, string[]>> };
          const adminCommon = { tags: ['Dashboard'], security: [{ adminKey: [] }] };
          const noValidation = { validatorCompiler: () => () => true };

          api.get('/session', { schema: { ...common, summary: 'Who is signed in: the admin, or a key (its id and name)', response: { 200: sessionSchema } } }, async (request) => {
            const viewer = viewerOf(request);
            if (viewer.role === 'admin') return { role: 'admin', key: null };
            const { id, name, source } = viewer.principal;
            return { role: 'key', key: { id, name, source } };
          });

          api.get<{ Querystring: { range?: string } }>(
            '/overview',
            {
              ...noValidation,
              schema: {
                ...common,
                summary: 'Requests, tokens, USD, 429s, upstream errors and latency over a range, in total, per key and per model (a key holder: their own key only)',
                querystring: rangeQuery,
                response: { 200: overviewSchema },
              },
            },
            async (request) => {
              const window = rangeWindow(parseRange(request.query.range), clock());
              const viewer = viewerOf(request);
              const own = viewer.role === 'key' ? viewer.principal : null;
              const rollups = await store.rollups(rollupQuery(window, own?.id));
              if (own !== null) {
                // Filtered by the store already; kept to this key here too, whatever it returned.
                const buckets = rollups.buckets.filter((b) => b.principal === own.id);
                return buildOverview({ buckets, byModel: rollups.byModel }, window, () => own.name);
              }
              const names = new Map((await store.listKeys()).map((k) => [k.id, k.name]));
              return buildOverview(rollups, window, (id) => names.get(id) ?? id);
            },
          );

          api.get('/keys', { schema: { ...common, summary: 'Keys with their limits (limit, used, remaining, reset), status, expiry and last use (a key holder: their own only)', response: { 200: keysSchema } } }, async (request) => {
            const viewer = viewerOf(request);
            return viewer.role === 'admin' ? table.all() : table.own(viewer.principal);
          });

          const setDisabled = (disabled: boolean) => async (request: FastifyRequest<{ Params: { id: string } }>) => {
            if (viewerOf(request).role !== 'admin') throw adminOnly(`Only the admin key may ${disabled ? 'disable' : 'enable'} keys.`);
            const view = await keyService.update(request.params.id, { disabled });
            return table.row((await store.getKey(view.id))!);
          };
          api.post<{ Params: { id: string } }>(
            '/keys/:id/disable',
            { schema: { ...adminCommon, summary: 'Disable a stored key: its next call is refused (401)', params: keyIdParams, response: { 200: keyRowSchema } } },
            setDisabled(true),
          );
          api.post<{ Params: { id: string } }>(
            '/keys/:id/enable',
            { schema: { ...adminCommon, summary: 'Enable a stored key again', params: keyIdParams, response: { 200: keyRowSchema } } },
            setDisabled(false),
          );
        },
        { prefix: '/api' },
      );
    },
    { prefix: '/dashboard' },
  );
}
