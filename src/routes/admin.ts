/**
 * The admin API under /admin: manage stored keys (create, list, show, update, rotate, revoke,
 * delete), read usage, set prices, and see the upstreams' state. Needs `Authorization: Bearer <PROXYGPT_ADMIN_KEY>` (compared
 * in constant time); without an admin key configured every /admin route answers 404, and a proxy
 * key never gets in.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalidRequest, notFound, unauthorized } from '../errors.js';
import { hasAdminKey } from '../http/admin-key.js';
import type { KeyService } from '../keys/service.js';
import { createKeySchema, parseDuration, updateKeySchema } from '../keys/input.js';
import type { PriceBook } from '../metering/price-book.js';
import type { UpstreamRouter } from '../upstreams/router.js';
import { upstreamsView } from './admin-upstreams.js';

const priceSchema = z.strictObject({
  input: z.number().min(0).max(1e6),
  cached_input: z.number().min(0).max(1e6).optional(),
  output: z.number().min(0).max(1e6),
});

/** `2026-11-01T00:00:00Z`, epoch ms, or a duration back from now (`7d`). */
export function parseTime(value: string | undefined, now: number, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const duration = parseDuration(value);
  if (duration !== null) return now - duration;
  if (/^\d+$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw invalidRequest(`${name} must be an ISO time, epoch milliseconds or a duration like 7d`, name);
  return parsed;
}

const jsonSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

export function registerAdminRoutes(
  app: FastifyInstance,
  adminKey: string | null,
  keys: KeyService,
  prices: PriceBook,
  clock: () => number,
  upstreams?: UpstreamRouter,
): void {
  void app.register(
    async (admin) => {
      admin.addHook('onRequest', async (request: FastifyRequest) => {
        if (adminKey === null) throw notFound(`No route for ${request.method} ${request.url.split('?')[0]}.`);
        if (!hasAdminKey(request.raw, adminKey)) throw unauthorized('The admin API needs the admin key (PROXYGPT_ADMIN_KEY).');
      });
      const common = { tags: ['Admin'], security: [{ adminKey: [] }] };
      const noValidation = { validatorCompiler: () => () => true };
      const keyParam = { type: 'object', properties: { key: { type: 'string', description: 'Key id or name' } }, required: ['key'] };

      admin.post('/keys', { ...noValidation, schema: { ...common, summary: 'Create a key (the secret is shown once)', body: jsonSchema(createKeySchema) } }, async (request, reply) => {
        const created = await keys.create(request.body);
        return reply.code(201).send({ ...created.key, key: created.secret });
      });
      admin.get('/keys', { schema: { ...common, summary: 'List keys' } }, async () => ({ object: 'list', data: await keys.list() }));
      admin.get<{ Params: { key: string } }>('/keys/:key', { schema: { ...common, summary: 'Show a key', params: keyParam } }, async (request) =>
        keys.show(request.params.key),
      );
      admin.patch<{ Params: { key: string } }>(
        '/keys/:key',
        { ...noValidation, schema: { ...common, summary: 'Update a key (null clears a limit or list)', params: keyParam, body: jsonSchema(updateKeySchema) } },
        async (request) => keys.update(request.params.key, request.body ?? {}),
      );
      admin.post<{ Params: { key: string } }>('/keys/:key/rotate', { schema: { ...common, summary: 'Replace the secret (the old one stops working)', params: keyParam } }, async (request) => {
        const rotated = await keys.rotate(request.params.key);
        return { ...rotated.key, key: rotated.secret };
      });
      admin.post<{ Params: { key: string } }>('/keys/:key/revoke', { schema: { ...common, summary: 'Disable a key at once', params: keyParam } }, async (request) =>
        keys.revoke(request.params.key),
      );
      admin.delete<{ Params: { key: string } }>('/keys/:key', { schema: { ...common, summary: 'Delete a key', params: keyParam } }, async (request) =>
        keys.remove(request.params.key),
      );
      admin.get<{ Querystring: { key?: string; since?: string; until?: string; upstream?: string } }>(
        '/usage',
        {
          schema: {
            ...common,
            summary: 'Usage over a time range: requests, tokens, USD, status counts',
            querystring: {
              type: 'object',
              properties: {
                key: { type: 'string', description: 'Key id or name (env keys: env-key-N); all keys when absent' },
                since: { type: 'string', description: 'ISO time, epoch ms, or a duration back from now (7d); default 30d' },
                until: { type: 'string', description: 'ISO time or epoch ms; default now' },
                upstream: { type: 'string', description: 'Only the calls this upstream (its name in the upstreams file) answered' },
              },
            },
          },
        },
        async (request) => {
          const now = clock();
          return keys.usage({
            key: request.query.key,
            since: parseTime(request.query.since, now, 'since'),
            until: parseTime(request.query.until, now, 'until'),
            upstream: request.query.upstream,
          });
        },
      );
      if (upstreams !== undefined) {
        admin.get('/upstreams', { schema: { ...common, summary: 'Each upstream and key: healthy, breaker open or half-open, rate limited; last error (keys shown by their last 4 characters)' } }, async () =>
          upstreamsView(upstreams),
        );
      }
      admin.get('/prices', { schema: { ...common, summary: 'Model prices in USD per million tokens (bundled and overrides)' } }, async () => keys.prices());
      admin.put<{ Params: { model: string } }>(
        '/prices/:model',
        { ...noValidation, schema: { ...common, summary: 'Override the price of a model (USD per million tokens)', body: jsonSchema(priceSchema) } },
        async (request) => {
          const result = priceSchema.safeParse(request.body);
          if (!result.success) throw invalidRequest(`Invalid price: ${result.error.issues[0]!.message}`, String(result.error.issues[0]!.path[0] ?? ''));
          const price = { input: result.data.input, cachedInput: result.data.cached_input ?? result.data.input, output: result.data.output };
          await keys.setPrice(request.params.model, price);
          prices.invalidate();
          return { model: request.params.model, ...price };
        },
      );
      admin.delete<{ Params: { model: string } }>('/prices/:model', { schema: { ...common, summary: 'Remove a price override' } }, async (request) => {
        await keys.setPrice(request.params.model, null);
        prices.invalidate();
        return { model: request.params.model, deleted: true };
      });
    },
    { prefix: '/admin' },
  );
}
