/**
 * Relays an upstream answer to the client while metering it: SSE streams and JSON bodies pass
 * through a tap (chunk by chunk, nothing buffered) that reads the reported usage; error bodies are
 * read whole and redacted. Settles the limiter once the body is over, also when the client left
 * early: then the upstream request is aborted and what was delivered is billed (prompt plus the
 * completion text sent so far, counted with the tokenizer), so a disconnect is never free.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { pipeline } from 'node:stream/promises';
import type { Admission, Gateway } from '../gateway.js';
import { countUsage } from '../metering/estimate.js';
import { JsonTap } from '../metering/json-tap.js';
import { SseTap } from '../metering/sse-tap.js';
import type { TokenUsage } from '../metering/usage.js';
import type { UpstreamResponse } from './forward.js';
import { clientResponseHeaders } from './headers.js';
import '../routes/usage-context.js';

export interface RelayOptions {
  /** The parsed JSON request body (for counting the prompt when no usage is reported). */
  requestBody: unknown;
  /** Drop the usage-only chunk the gateway asked for on the client's behalf. */
  stripUsageChunk: boolean;
}

export async function relay(
  gateway: Gateway,
  request: FastifyRequest,
  reply: FastifyReply,
  admission: Admission,
  upstream: UpstreamResponse,
  options: RelayOptions,
): Promise<FastifyReply> {
  const status = upstream.statusCode;
  reply.code(status).headers(clientResponseHeaders(upstream.headers)).headers(admission.headers);
  const context = request.usage!;

  if (status < 200 || status >= 300) {
    // Error bodies are small: read them whole and make sure no secret of ours rides along.
    const text = gateway.redactor.text(await upstream.body.text());
    const settlement = await gateway.settle(admission, status, null);
    context.settlement = { ...settlement, estimated: false };
    reply.removeHeader('content-length');
    return reply.send(text);
  }

  const contentType = String(upstream.headers['content-type'] ?? '');
  const tap = contentType.includes('text/event-stream')
    ? new SseTap({ stripUsageChunk: options.stripUsageChunk })
    : contentType.includes('json')
      ? new JsonTap()
      : null;
  if (tap === null) {
    const settlement = await gateway.settle(admission, status, null);
    context.settlement = { ...settlement, estimated: false };
    return reply.send(upstream.body);
  }
  if (tap instanceof SseTap) reply.removeHeader('content-length');

  context.done = pipeline(upstream.body, tap)
    .then(
      () => true,
      () => false,
    )
    .then(async () => {
      let usage: TokenUsage | null = tap.usage();
      let estimated = false;
      if (usage === null && options.requestBody !== null) {
        usage = await countUsage(options.requestBody, tap.completionText());
        estimated = true;
      }
      const settlement = await gateway.settle(admission, status, usage);
      context.settlement = { ...settlement, estimated };
    })
    .catch((err: unknown) => request.log.error({ err }, 'settling a call failed'));
  return reply.send(tap);
}
