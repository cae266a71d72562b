/**
 * GET /metrics: the gateway's Prometheus metrics (metrics/). PROXYGPT_METRICS=admin needs
 * `Authorization: Bearer <PROXYGPT_ADMIN_KEY>` (401 otherwise); `open` answers anyone. Not
 * registered at all with `off`, or with `admin` and no admin key: then it is an unknown route
 * (404), like the admin API. A scrape is no proxied call: nothing is counted or limited.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { metricsUnavailable, unauthorized } from '../errors.js';
import { hasAdminKey } from '../http/admin-key.js';

export interface MetricsRouteOptions {
  /** `admin`: the admin key is checked; `open`: anyone may read. */
  access: { admin: string } | 'open';
  scrape: () => Promise<string>;
  contentType: string;
}

export function registerMetricsRoute(app: FastifyInstance, { access, scrape, contentType }: MetricsRouteOptions): void {
  const onRequest =
    access === 'open'
      ? []
      : [
          async (request: FastifyRequest) => {
            if (!hasAdminKey(request.raw, access.admin)) throw unauthorized('/metrics needs the admin key (PROXYGPT_ADMIN_KEY).');
          },
        ];
  app.get(
    '/metrics',
    {
      onRequest,
      schema: {
        tags: ['Gateway'],
        summary: 'Prometheus metrics',
        description:
          'Calls, durations, tokens and USD by key name, endpoint and model; 429s by the limit that refused; calls and streams open; ' +
          'the process metrics. With several workers, the figures of all of them. ' +
          (access === 'open' ? 'Open to anyone (PROXYGPT_METRICS=open).' : 'Needs the admin key (PROXYGPT_METRICS=admin).'),
        security: access === 'open' ? [] : [{ adminKey: [] }],
        response: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (request, reply) => {
      let text: string;
      try {
        text = await scrape();
      } catch (err) {
        request.log.error({ err }, 'collecting the metrics failed');
        throw metricsUnavailable();
      }
      return reply.type(contentType).header('cache-control', 'no-store').send(text);
    },
  );
}
