/**
 * OpenAI-compatible pass-through under /v1: each allowed endpoint is a route (so the docs list
 * it), and a catch-all answers every other /v1 path with 403 after authentication. The handler is
 * the request path in order: auth (the proxy-key hook, with the endpoint policy) → policy for the
 * body's model → reserve → forward → meter (relay) → settle; the record follows (call-record.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { EndpointRule } from '../config.js';
import type { Gateway } from '../gateway.js';
import { inspectBody, pathOf, searchOf } from '../call/inspect.js';
import { relay } from '../call/relay.js';
import { requireProxyKey, type RequireProxyKeyOptions } from '../http/require-proxy-key.js';
import { ModelCatalog } from '../upstreams/model-list.js';
import { answerModels, isModelsRequest } from './v1-models.js';

const ALL_METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

const ENDPOINT_DOCS: Record<string, string> = {
  '/v1/chat/completions': 'Creates a chat completion (streaming with `"stream": true`). Same body and answer as OpenAI.',
  '/v1/embeddings': 'Creates embeddings. Same body and answer as OpenAI.',
  '/v1/responses': 'Creates a model response (Responses API). Same body and answer as OpenAI.',
  '/v1/models': 'Lists the models (with several upstreams: those of every upstream this key may use).',
  '/v1/completions': 'Creates a legacy text completion.',
};

export interface V1RoutesOptions {
  /** The allowed endpoints (PROXYGPT_ALLOWED_ENDPOINTS): one documented route each. */
  endpoints: readonly EndpointRule[];
  keys: Pick<RequireProxyKeyOptions, 'authenticator' | 'access'>;
  gateway: Gateway;
}

export function registerV1Routes(app: FastifyInstance, { endpoints, keys, gateway }: V1RoutesOptions): void {
  const authorize = requireProxyKey({ ...keys, endpoint: 'request' });
  // With several upstreams the gateway lists the models itself (v1-models.ts).
  const catalog = gateway.upstreams.listsModels ? new ModelCatalog(gateway.upstreams) : null;

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    if (catalog !== null && isModelsRequest(request)) return answerModels(request, reply, gateway, catalog);
    const url = request.raw.url ?? '/';
    const path = pathOf(url);
    // Policy for the body (its model); the endpoint was checked with the key, before the body was read.
    const call = (request.call = gateway.open(request.principal!, await inspectBody(request), request.log));
    // Reserve → forward → meter (relay) → settle.
    const upstreamRequest = { method: request.method, path: path.slice('/v1'.length), search: searchOf(url), headers: request.headers, body: request.rawBody };
    return call.run(reply, upstreamRequest, relay);
  };

  const registered = new Set<string>();
  for (const rule of endpoints) {
    registered.add(`${rule.method} ${rule.path}`);
    const exact = !rule.path.endsWith('/*');
    app.route({
      method: rule.method,
      url: rule.path,
      onRequest: authorize,
      handler: proxy,
      validatorCompiler: () => () => true,
      schema: {
        tags: ['OpenAI-compatible'],
        summary: `${rule.method} ${rule.path}`,
        description: (exact ? ENDPOINT_DOCS[rule.path] : undefined) ?? 'Passed through to the upstream OpenAI-compatible API.',
        security: [{ proxyKey: [] }],
        ...(rule.method === 'GET' || rule.method === 'DELETE' ? {} : { body: { type: 'object', additionalProperties: true } }),
      },
    });
  }
  const catchAllMethods = ALL_METHODS.filter((m) => !registered.has(`${m} /v1/*`));
  app.route({ method: catchAllMethods, url: '/v1/*', onRequest: authorize, handler: proxy, schema: { hide: true } });
}
