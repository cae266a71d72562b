/**
 * OpenAI-compatible pass-through under /v1: each allowed endpoint is a route (so the docs list
 * it), and a catch-all answers every other /v1 path with 403 after authentication. The handler is
 * the request path in order: auth → policy → reserve → forward → settle; recording happens in the
 * onResponse hook once the last byte is out.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { ApiError, badRequest } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { ClientGoneError } from '../proxy/forward.js';
import { clientResponseHeaders } from '../proxy/headers.js';
import type { Principal } from '../auth/keys.js';
import './usage-context.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** What the policy needs from a body: the model (JSON field or multipart form field) and stream flag. */
async function inspectBody(request: FastifyRequest): Promise<{ model: string | null; stream: boolean }> {
  if (request.rawBody === null) return { model: null, stream: false };
  const contentType = String(request.headers['content-type'] ?? '');
  if (contentType.toLowerCase().startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      form = await new Response(request.rawBody, { headers: { 'content-type': contentType } }).formData();
    } catch {
      throw badRequest('The multipart body could not be parsed.');
    }
    const model = form.get('model');
    if (model !== null && typeof model !== 'string') throw badRequest('The model field must be text.', 'invalid_request', 'model');
    return { model, stream: form.get('stream') === 'true' };
  }
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  const fields = body as { model?: unknown; stream?: unknown };
  if (fields.model !== undefined && typeof fields.model !== 'string') throw badRequest('model must be a string.', 'invalid_request', 'model');
  return { model: fields.model ?? null, stream: fields.stream === true };
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
    request.principal = gateway.authenticate(request.headers.authorization);
    gateway.policy.checkEndpoint(request.method, pathOf(request.raw.url ?? '/'));
  };

  const proxy = async (request: FastifyRequest, reply: FastifyReply) => {
    const principal = request.principal!;
    const url = request.raw.url ?? '/';
    const { model, stream } = await inspectBody(request);
    gateway.policy.checkModel(model ?? undefined);
    request.usage = { principal: principal.id, model, stream };

    const admission = await gateway.admit();

    const abort = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    let upstream;
    try {
      upstream = await gateway.upstream.send({
        method: request.method,
        path: pathOf(url).slice('/v1'.length),
        search: searchOf(url),
        headers: request.headers,
        body: request.rawBody,
        signal: abort.signal,
      });
    } catch (err) {
      await gateway.settle(admission, null);
      if (err instanceof ClientGoneError) return reply.code(499).send();
      throw err instanceof ApiError ? err.withHeaders(admission.headers) : err;
    }
    await gateway.settle(admission, upstream.statusCode);
    const headers = clientResponseHeaders(upstream.headers);
    reply.code(upstream.statusCode).headers(headers).headers(admission.headers);
    if (upstream.statusCode >= 200 && upstream.statusCode < 300) return reply.send(upstream.body);
    // Error bodies are small: read them whole and make sure no secret of ours rides along.
    const text = gateway.redactor.text(await upstream.body.text());
    reply.removeHeader('content-length');
    return reply.send(text);
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
