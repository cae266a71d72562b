/**
 * OpenAI-compatible pass-through under /v1: each allowed endpoint is a route (so the docs list
 * it), and a catch-all answers every other /v1 path with 403 after authentication. The handler is
 * the request path in order: auth → policy → reserve → forward → meter and settle (relay.ts) →
 * record (onResponse hook).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { invalidRequest } from '../errors.js';
import type { Gateway } from '../gateway.js';
import type { Principal } from '../auth/authenticator.js';
import { forwardFor, relay } from '../proxy/relay.js';
import { estimateUsage } from '../metering/estimate.js';
import { usageContext } from './usage-context.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const ALL_METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function searchOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q);
}

interface InspectedBody {
  model: string | null;
  stream: boolean;
  /** The parsed JSON object, or null for bodiless and multipart requests. */
  json: Record<string, unknown> | null;
}

/** What the policy needs from a body: the model (JSON field or multipart form field) and stream flag. */
async function inspectBody(request: FastifyRequest): Promise<InspectedBody> {
  if (request.rawBody === null) return { model: null, stream: false, json: null };
  const contentType = String(request.headers['content-type'] ?? '');
  if (contentType.toLowerCase().startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await new Response(request.rawBody, { headers: { 'content-type': contentType } }).formData();
    } catch {
      throw invalidRequest('The multipart body could not be parsed.');
    }
    const model = form.get('model');
    if (model !== null && typeof model !== 'string') throw invalidRequest('The model field must be text.', 'model');
    return { model, stream: form.get('stream') === 'true', json: null };
  }
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidRequest('The request body must be a JSON object.');
  const json = body as Record<string, unknown>;
  if (json.model !== undefined && typeof json.model !== 'string') throw invalidRequest('model must be a string.', 'model');
  return { model: (json.model as string | undefined) ?? null, stream: json.stream === true, json };
}

/** The body field that caps the completion, by endpoint. */
const COMPLETION_CAP_FIELD: Record<string, string> = {
  '/v1/chat/completions': 'max_completion_tokens',
  '/v1/responses': 'max_output_tokens',
  '/v1/completions': 'max_tokens',
};
const CAP_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'];

/**
 * The body to send upstream: the client's bytes as they came, unless the gateway must add to it.
 * - A streamed chat completion asks the upstream for the usage chunk (hidden again from a client
 *   that did not ask for it: `strip`).
 * - A key with token or spend limits gets the completion budget it reserved (`capTokens`) as the
 *   request's cap when the client named none, so what it settles can never exceed what it reserved.
 */
function upstreamBody(path: string, inspected: InspectedBody, raw: Buffer | null, capTokens: number | null): { body: Buffer | null; strip: boolean } {
  const json = inspected.json;
  if (json === null) return { body: raw, strip: false };
  const patch: Record<string, unknown> = {};
  let strip = false;
  if (inspected.stream && path === '/v1/chat/completions') {
    const options = json.stream_options;
    const asked = options !== null && typeof options === 'object' && (options as { include_usage?: unknown }).include_usage === true;
    if (!asked) {
      patch.stream_options = options !== null && typeof options === 'object' ? { ...options, include_usage: true } : { include_usage: true };
      strip = true;
    }
  }
  const capField = COMPLETION_CAP_FIELD[path];
  if (capTokens !== null && capField !== undefined && !CAP_FIELDS.some((f) => typeof json[f] === 'number')) patch[capField] = capTokens;
  if (Object.keys(patch).length === 0) return { body: raw, strip: false };
  return { body: Buffer.from(JSON.stringify({ ...json, ...patch })), strip };
}

const ENDPOINT_DOCS: Record<string, string> = {
  '/v1/chat/completions': 'Creates a chat completion (streaming with `"stream": true`). Same body and answer as OpenAI.',
  '/v1/embeddings': 'Creates embeddings. Same body and answer as OpenAI.',
  '/v1/responses': 'Creates a model response (Responses API). Same body and answer as OpenAI.',
  '/v1/models': 'Lists the upstream models.',
  '/v1/completions': 'Creates a legacy text completion.',
};

export function registerV1Routes(app: FastifyInstance, gateway: Gateway): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('usage', null);

  /** Auth and endpoint policy run before the body is read: strangers cannot make us parse 10 MB. */
  const authorize = async (request: FastifyRequest): Promise<void> => {
    request.principal = await gateway.authenticate(request.headers.authorization);
    gateway.authorize(request.principal, request.method, pathOf(request.raw.url ?? '/'), request.ip);
  };

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    const principal = request.principal!;
    const url = request.raw.url ?? '/';
    const path = pathOf(url);
    const inspected = await inspectBody(request);
    gateway.checkModel(principal, inspected.model);
    request.usage = usageContext(principal.id, inspected.model, inspected.stream);

    const metered = inspected.json !== null && gateway.meters(principal);
    const estimate = metered ? estimateUsage(inspected.json, gateway.config.defaultMaxTokens) : null;
    const admission = await gateway.admit(principal, inspected.model, estimate);

    const { body, strip } = upstreamBody(path, inspected, request.rawBody, metered ? gateway.config.defaultMaxTokens : null);
    const upstream = await forwardFor(
      gateway,
      request,
      reply,
      admission,
      { method: request.method, path: path.slice('/v1'.length), search: searchOf(url), headers: request.headers, body },
      inspected.json,
    );
    if (upstream === null) return reply.code(499).send();
    return relay(gateway, request, reply, admission, upstream, { requestBody: inspected.json, stripUsageChunk: strip });
  };

  const registered = new Set<string>();
  for (const rule of gateway.config.allowedEndpoints) {
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
