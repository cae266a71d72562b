/**
 * The original ProxyGPT route, kept so old clients keep working: POST /api/openai/completions/gpt3
 * takes a JSON array of {role, content} and an optional ?temperature=, sends one chat completion
 * with the configured legacy model through the same auth and limits, and answers
 * {"message": "<assistant text>"}. Upstream errors come back with their status and body.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badUpstreamResponse } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { forwardFor, settleWith } from '../proxy/relay.js';
import { usageContext } from './usage-context.js';
import { estimateUsage } from '../metering/estimate.js';
import { usageFromJson } from '../metering/usage.js';

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

export function registerLegacyRoute(app: FastifyInstance, gateway: Gateway): void {
  // Upstream error bodies are passed to the client: the gateway's redactor makes sure none of our
  // secrets ride along.
  const { redactor } = gateway;
  app.post<{ Body: LegacyMessage[]; Querystring: { temperature?: number } }>(
    '/api/openai/completions/gpt3',
    {
      onRequest: async (request: FastifyRequest) => {
        request.principal = await gateway.authenticate(request.headers.authorization);
        gateway.authorize(request.principal, 'POST', '/v1/chat/completions', request.ip);
      },
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
      const principal = request.principal!;
      const model = gateway.config.legacyModel;
      gateway.checkModel(principal, model);
      request.usage = usageContext(principal.id, model, false);
      const payload: Record<string, unknown> = { model, messages: request.body };
      if (request.query.temperature !== undefined) payload.temperature = request.query.temperature;
      const metered = gateway.meters(principal);
      const estimate = metered ? estimateUsage(payload, gateway.config.defaultMaxTokens) : null;
      // A key with token or spend limits never gets more completion than it reserved.
      if (metered) payload.max_tokens = gateway.config.defaultMaxTokens;
      const admission = await gateway.admit(principal, model, estimate);

      const upstream = await forwardFor(
        gateway,
        request,
        reply,
        admission,
        {
          method: 'POST',
          path: '/chat/completions',
          search: '',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(payload),
        },
        payload,
      );
      if (upstream === null) return reply.code(499).send();
      reply.headers(admission.headers);
      const status = upstream.statusCode;
      let text: string;
      try {
        text = await upstream.body.text();
      } catch (err) {
        // The client left (or the upstream broke) mid-body: bill what the prompt cost.
        await settleWith(gateway, admission, status, null, payload, '', request.usage);
        throw err;
      }
      let parsed: ChatAnswer | null = null;
      try {
        parsed = JSON.parse(text) as ChatAnswer;
      } catch {
        parsed = null;
      }
      const ok = status >= 200 && status < 300;
      // A 2xx without usage is counted with the tokenizer; an error counts only what it reports.
      await settleWith(gateway, admission, status, usageFromJson(parsed), ok ? payload : null, '', request.usage);
      if (!ok) {
        return reply
          .code(status)
          .type(String(upstream.headers['content-type'] ?? 'application/json'))
          .send(redactor.text(text));
      }
      const content = parsed?.choices?.[0]?.message?.content;
      if (typeof content !== 'string') {
        throw badUpstreamResponse('The upstream answer had no assistant message.').withHeaders(admission.headers);
      }
      return { message: content };
    },
  );
}
