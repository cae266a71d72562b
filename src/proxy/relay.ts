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
import { usageFromJson, type TokenUsage } from '../metering/usage.js';
import { ApiError } from '../errors.js';
import { CallSignal, ClientGoneError, type UpstreamRequest, type UpstreamResponse } from './forward.js';
import { clientResponseHeaders } from './headers.js';
import '../routes/usage-context.js';

export interface RelayOptions {
  /** The parsed JSON request body (for counting the prompt when no usage is reported). */
  requestBody: unknown;
  /** Drop the usage-only chunk the gateway asked for on the client's behalf. */
  stripUsageChunk: boolean;
}

/**
 * Forwards a call upstream on behalf of `reply`'s client, aborting it if the client leaves first.
 * When no answer comes back it settles the call itself: a client that left is billed its prompt
 * (the upstream already has it) and null is returned, the route then answers 499; any other
 * failure releases the reservation and is rethrown with the rate-limit headers.
 */
export async function forwardFor(
  gateway: Gateway,
  request: FastifyRequest,
  reply: FastifyReply,
  admission: Admission,
  call: Omit<UpstreamRequest, 'signal'>,
  requestBody: unknown,
): Promise<UpstreamResponse | null> {
  const signal = new CallSignal();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) signal.abort();
  });
  try {
    return await gateway.upstream.send({ ...call, signal });
  } catch (err) {
    if (err instanceof ClientGoneError) {
      request.usage!.done = settleWith(gateway, admission, null, null, requestBody, '', request.usage!);
      return null;
    }
    await gateway.settle(admission, null, null);
    throw err instanceof ApiError ? err.withHeaders(admission.headers) : err;
  }
}

/** The assistant text of a chat completion (or text completion) body. */
function completionTextOf(body: unknown): string {
  const choices = (body as { choices?: { message?: { content?: unknown }; text?: unknown }[] } | null)?.choices;
  if (!Array.isArray(choices)) return '';
  return choices.map((c) => (typeof c.message?.content === 'string' ? c.message.content : typeof c.text === 'string' ? c.text : '')).join('');
}

/** JSON answers up to this size (nearly all) are read whole and sent with their length. */
const WHOLE_BODY_MAX_BYTES = 1024 * 1024;

/** Meters a whole JSON body: one read, one parse, sent as it came; settles after sending. */
async function relayWholeJson(
  gateway: Gateway,
  request: FastifyRequest,
  reply: FastifyReply,
  admission: Admission,
  upstream: UpstreamResponse,
  options: RelayOptions,
): Promise<FastifyReply> {
  const context = request.usage!;
  const status = upstream.statusCode;
  let body: Buffer;
  try {
    body = Buffer.from(await upstream.body.arrayBuffer());
  } catch (err) {
    // The client left (or the upstream broke) mid-body: bill the prompt.
    context.done = settleWith(gateway, admission, status, null, options.requestBody, '', context);
    throw err;
  }
  let usage: TokenUsage | null = null;
  let text = '';
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    usage = usageFromJson(parsed);
    if (usage === null) text = completionTextOf(parsed);
  } catch {
    // not JSON after all: nothing to read
  }
  context.done = settleWith(gateway, admission, status, usage, options.requestBody, text, context);
  return reply.send(body);
}

/** Settles with the reported usage, or with a tokenizer count of what was asked and delivered. */
export async function settleWith(
  gateway: Gateway,
  admission: Admission,
  status: number | null,
  reported: TokenUsage | null,
  requestBody: unknown,
  deliveredText: string,
  context: NonNullable<FastifyRequest['usage']>,
): Promise<void> {
  let usage = reported;
  let estimated = false;
  if (usage === null && requestBody !== null) {
    usage = await countUsage(requestBody, deliveredText);
    estimated = true;
  }
  const settlement = await gateway.settle(admission, status, usage);
  context.settlement = { ...settlement, estimated };
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
    let text: string;
    try {
      text = gateway.redactor.text(await upstream.body.text());
    } finally {
      // No usage to read and nothing to count: settled as reported (nothing).
      await settleWith(gateway, admission, status, null, null, '', context);
    }
    reply.removeHeader('content-length');
    return reply.send(text);
  }

  const contentType = String(upstream.headers['content-type'] ?? '');
  const length = Number(upstream.headers['content-length'] ?? NaN);
  if (contentType.includes('json') && length <= WHOLE_BODY_MAX_BYTES) return relayWholeJson(gateway, request, reply, admission, upstream, options);
  const tap = contentType.includes('text/event-stream')
    ? new SseTap({ stripUsageChunk: options.stripUsageChunk })
    : contentType.includes('json')
      ? new JsonTap()
      : null;
  if (tap === null) {
    await settleWith(gateway, admission, status, null, null, '', context);
    return reply.send(upstream.body);
  }
  if (tap instanceof SseTap) reply.removeHeader('content-length');

  context.done = pipeline(upstream.body, tap)
    .then(
      () => true,
      () => false,
    )
    .then(() => settleWith(gateway, admission, status, tap.usage(), options.requestBody, tap.completionText(), context))
    .catch((err: unknown) => request.log.error({ err }, 'settling a call failed'));
  return reply.send(tap);
}
