/**
 * Liveness and readiness: /healthz answers while the process serves HTTP; /readyz also asks each
 * dependency (the store; the limiter when it lives elsewhere, i.e. Redis) and says which answer,
 * 503 while one does not, for load balancers and orchestrators.
 */
import type { FastifyInstance } from 'fastify';
import { notReady } from '../errors.js';

/** A dependency's check: resolves when it answers. */
export type ReadinessCheck = () => Promise<void>;

/** Longest a check may take before its dependency counts as down (readiness must not hang). */
const CHECK_TIMEOUT_MS = 2_000;

async function probe(check: ReadinessCheck): Promise<'ok' | 'unreachable'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'ok';
  } catch {
    return 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: FastifyInstance, checks: Record<string, ReadinessCheck>): void {
  const status = { type: 'object', properties: { status: { type: 'string' } } };
  const schema = { tags: ['Gateway'], response: { 200: status } };
  app.get('/healthz', { schema: { ...schema, summary: 'Liveness' } }, async () => ({ status: 'ok' }));
  const checksSchema = { type: 'object', additionalProperties: { type: 'string', enum: ['ok', 'unreachable'] } };
  const readySchema = {
    ...schema,
    summary: 'Readiness: each dependency (store; limiter on Redis) answers',
    response: { 200: { type: 'object', properties: { status: { type: 'string' }, checks: checksSchema } }, 503: { type: 'object', additionalProperties: true } },
  };
  app.get('/readyz', { schema: readySchema }, async (request, reply) => {
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((name) => probe(checks[name]!)));
    const byName = Object.fromEntries(names.map((name, i) => [name, results[i]!]));
    const down = names.filter((name) => byName[name] !== 'ok');
    if (down.length === 0) return { status: 'ok', checks: byName };
    request.log.warn({ down }, 'readiness check failed');
    return reply.code(503).send({ ...notReady(`Not ready: the ${down.join(' and the ')} ${down.length > 1 ? 'are' : 'is'} not reachable.`).toBody(), checks: byName });
  });
}
