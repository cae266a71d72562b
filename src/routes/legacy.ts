/**
 * The original ProxyGPT route, kept so old clients keep working: POST /api/openai/completions/gpt3
 * takes a JSON array of {role, content} and an optional ?temperature=, and answers
 * {"message": "<assistant text>"}. It runs the /v1 request path (the same key check, standing for
 * POST /v1/chat/completions, the same policy, limits, metering and settling) and only maps its
 * JSON in (a chat completion with the configured legacy model) and out. Upstream errors come back
 * with their status and body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badUpstreamResponse } from '../errors.js';
import type { Gateway } from '../gateway.js';
import type { ProxyCall } from '../call/proxy-call.js';
import { readAnswer } from '../call/relay.js';
import type { UpstreamResponse } from '../proxy/forward.js';
import { requireProxyKey, type RequireProxyKeyOptions } from '../http/require-proxy-key.js';

interface ChatAnswer {
  choices?: { message?: { content?: unknown } }[];
}

interface LegacyMessage {
  role: string;
  content: string;
}

const messageSchema = {
  type: 'object',
  required: ['role', 'content'],
  additionalProperties: false,
  properties: {
    role: { type: 'string', enum: ['system', 'user', 'assistant', 'developer'] },
    content: { type: 'string' },
  },
} as const;

/** A decimal number as it may appear in `?temperature=` (no exponent, hex, Infinity or blanks). */
const DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)$/;

/** The upstream endpoint this route stands for (its key must be allowed to use it). */
const CHAT_COMPLETIONS = { method: 'POST', path: '/v1/chat/completions' } as const;
const UPSTREAM_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

/** Maps the upstream's chat completion out: its assistant text, or its error as it came (redacted). */
async function answerInLegacyShape(call: ProxyCall, reply: FastifyReply, response: UpstreamResponse): Promise<FastifyReply> {
  reply.headers(call.admission!.headers);
  const status = response.statusCode;
  const { text, json } = await readAnswer(call, response);
  if (status < 200 || status >= 300) {
    return reply
      .code(status)
      .type(call.context.redactor.secretsOnly(String(response.headers['content-type'] ?? 'application/json')))
      .send(call.context.redactor.text(text));
  }
  const content = (json as ChatAnswer | undefined)?.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw badUpstreamResponse('The upstream answer had no assistant message.');
  // A model may write anything, but not one of our secrets (a client's own key it pasted, say).
  return reply.send({ message: call.context.redactor.secretsOnly(content) });
}

export interface LegacyRouteOptions {
  /** PROXYGPT_LEGACY_MODEL. */
  model: string;
  keys: Pick<RequireProxyKeyOptions, 'authenticator' | 'access'>;
  gateway: Gateway;
}

export function registerLegacyRoute(app: FastifyInstance, { model, keys, gateway }: LegacyRouteOptions): void {
  app.post<{ Body: LegacyMessage[]; Querystring: { temperature?: number } }>(
    '/api/openai/completions/gpt3',
    {
      onRequest: requireProxyKey({ ...keys, endpoint: CHAT_COMPLETIONS }),
      // Query strings are text and the server's validator does not coerce types: turn a decimal
      // `?temperature=0.5` into a number here so that the schema (0..2) can check it.
      preValidation: async (request: FastifyRequest) => {
        const query = request.query as Record<string, unknown>;
        if (typeof query.temperature === 'string' && DECIMAL.test(query.temperature)) query.temperature = Number(query.temperature);
      },
      schema: {
        tags: ['Legacy'],
        summary: 'Chat completion, original ProxyGPT style',
        description: `Body: a JSON array of messages. Uses the model set by PROXYGPT_LEGACY_MODEL (default gpt-3.5-turbo). Counts against the same limits as /v1.`,
        security: [{ proxyKey: [] }],
        querystring: {
          type: 'object',
          properties: { temperature: { type: 'number', minimum: 0, maximum: 2 } },
        },
        body: { type: 'array', minItems: 1, items: messageSchema },
        response: {
          200: {
            description: 'The assistant message text',
            type: 'object',
            properties: { message: { type: 'string' } },
          },
        },
      },
    },
    async (request, reply) => {
      // Map in: a chat completion of the legacy model.
      const payload: Record<string, unknown> = { model, messages: request.body };
      if (request.query.temperature !== undefined) payload.temperature = request.query.temperature;
      const call = (request.call = gateway.open(request.principal!, { model, stream: false, json: payload }, request.log));
      // A key with token or spend limits never gets more completion than it reserved.
      const cap = call.completionCap();
      if (cap !== null) payload.max_tokens = cap;
      // Reserve → forward → meter and map out → settle.
      const upstreamRequest = { method: 'POST', path: '/chat/completions', search: '', headers: UPSTREAM_HEADERS, body: JSON.stringify(payload) };
      return call.run(reply, upstreamRequest, answerInLegacyShape);
    },
  );
}
