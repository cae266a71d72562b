/**
 * GET /ratelimit: the original's status route. Needs a proxy key, is never limited itself, and
 * returns the original's fields for each enabled limit (`hourly_rate_limit`, `hourly_api_usage`,
 * …) plus how many requests remain and when the next one frees up.
 */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../gateway.js';

const limitProperties = (prefix: string) => ({
  [`${prefix}_rate_limit`]: { type: 'integer', description: `Requests allowed per rolling ${prefix === 'hourly' ? 'hour' : 'day'}` },
  [`${prefix}_api_usage`]: { type: 'integer', description: 'Requests counted (or in flight) in the current window' },
  [`${prefix}_remaining`]: { type: 'integer' },
  [`${prefix}_reset_seconds`]: { type: 'number', description: 'Seconds until the oldest counted request leaves the window' },
});

export function registerRateLimitRoute(app: FastifyInstance, gateway: Gateway): void {
  app.get(
    '/ratelimit',
    {
      onRequest: async (request) => {
        request.principal = gateway.authenticate(request.headers.authorization);
      },
      schema: {
        tags: ['Gateway'],
        summary: 'Current rate-limit usage',
        description: 'Global limits of this gateway. Needs a proxy key; never counted against any limit.',
        security: [{ proxyKey: [] }],
        response: {
          200: {
            type: 'object',
            properties: {
              ...limitProperties('hourly'),
              ...limitProperties('daily'),
              error: { type: 'string', description: 'Present when no limit is enabled (the original ProxyGPT answer)' },
            },
          },
        },
      },
    },
    async () => {
      const states = await gateway.status();
      if (states.length === 0) return { error: 'Rate limit is not enabled.' };
      const body: Record<string, number> = {};
      for (const state of states) {
        body[`${state.name}_rate_limit`] = state.limit;
        body[`${state.name}_api_usage`] = state.used;
        body[`${state.name}_remaining`] = state.remaining;
        body[`${state.name}_reset_seconds`] = Math.ceil(state.resetMs / 1000);
      }
      return body;
    },
  );
}
