/**
 * Liveness and readiness: /healthz answers while the process serves HTTP; /readyz also checks
 * that the store answers a query (503 otherwise), for load balancers and orchestrators.
 */
import type { FastifyInstance } from 'fastify';
import { notReady } from '../errors.js';
import type { Store } from '../contract.js';

export function registerHealthRoutes(app: FastifyInstance, store: Store): void {
  const status = { type: 'object', properties: { status: { type: 'string' } } };
  const schema = { tags: ['Gateway'], response: { 200: status } };
  app.get('/healthz', { schema: { ...schema, summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  const readySchema = { ...schema, summary: 'Readiness (store reachable)', response: { 200: status, 503: { type: 'object', additionalProperties: true } } };
  app.get('/readyz', { schema: readySchema }, async (request, reply) => {
    try {
      await store.ping();
      return { status: 'ok' };
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'readiness check failed');
      return reply.code(503).send(notReady('The store is not reachable.').toBody());
    }
  });
}
