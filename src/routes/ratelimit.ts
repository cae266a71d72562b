/**
 * GET /ratelimit: the original's status route. Needs a proxy key, is never limited itself, and
 * returns the original's fields for each enabled limit (`hourly_rate_limit`, `hourly_api_usage`,
 * …) plus how many requests remain and when the next one frees up.
 */
import type { FastifyInstance } from 'fastify';
import type { CallLimits } from '../limits/call-limits.js';
import { requireProxyKey, type RequireProxyKeyOptions } from '../http/require-proxy-key.js';

const limitProperties = (prefix: string) => ({
  [`${prefix}_rate_limit`]: { type: 'integer', description: `Requests allowed per rolling ${prefix === 'hourly' ? 'hour' : 'day'}` },
  [`${prefix}_api_usage`]: { type: 'integer', description: 'Requests counted (or in flight) in the current window' },
  [`${prefix}_remaining`]: { type: 'integer' },
  [`${prefix}_reset_seconds`]: { type: 'number', description: 'Seconds until the oldest counted request leaves the window' },
});

export interface RateLimitRouteOptions {
  keys: Pick<RequireProxyKeyOptions, 'authenticator' | 'access'>;
  limits: Pick<CallLimits, 'status'>;
}

export function registerRateLimitRoute(app: FastifyInstance, { keys, limits }: RateLimitRouteOptions): void {
  app.get(
    '/ratelimit',
    {
      // A route of the gateway's own, no upstream endpoint: the key's IP allowlist still applies.
      onRequest: requireProxyKey({ ...keys, endpoint: 'none' }),
      schema: {
        tags: ['Gateway'],
        summary: 'Current rate-limit usage',
        description:
          'Global limits of this gateway (the original fields) and, for a stored key, its own limits under `key`. ' +
          'Needs a proxy key; never counted against any limit. Shows nothing about other keys.',
        security: [{ proxyKey: [] }],
        response: {
          200: {
            type: 'object',
            properties: {
              ...limitProperties('hourly'),
              ...limitProperties('daily'),
              key: {
                type: 'object',
                additionalProperties: true,
                description: 'The calling stored key: id, name, expires_at and its limits (limit, used, remaining, reset_seconds; USD in dollars)',
              },
              error: { type: 'string', description: 'Present when no limit is enabled (the original ProxyGPT answer)' },
            },
          },
        },
      },
    },
    async (request) => {
      const principal = request.principal!;
      const { global, key } = await limits.status(principal);
      const body: Record<string, unknown> = {};
      for (const state of global) {
        body[`${state.name}_rate_limit`] = state.limit;
        body[`${state.name}_api_usage`] = state.used;
        body[`${state.name}_remaining`] = state.remaining;
        body[`${state.name}_reset_seconds`] = Math.ceil(state.resetMs / 1000);
      }
      if (principal.source === 'stored') {
        const limits: Record<string, Record<string, number>> = {};
        for (const state of key) {
          const scale = state.unit === 'usd' ? 1e6 : 1;
          limits[state.name.replace(/^key_/, '')] = {
            limit: state.limit / scale,
            used: state.used / scale,
            remaining: state.remaining / scale,
            reset_seconds: Math.ceil(state.resetMs / 1000),
          };
        }
        const expiresAt = principal.expiresAt === null ? null : new Date(principal.expiresAt).toISOString();
        body.key = { id: principal.id, name: principal.name, expires_at: expiresAt, limits };
      }
      if (global.length === 0 && key.length === 0) return { ...body, error: 'Rate limit is not enabled.' };
      return body;
    },
  );
}
