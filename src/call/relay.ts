/**
 * The meter step: relays an upstream answer to the client while reading what it cost, and
 * settles the call once the answer is over. SSE streams and large JSON bodies pass through a tap
 * (chunk by chunk, nothing buffered) that reads the reported usage; JSON answers up to 1 MiB are
 * read whole and sent as they came; error bodies are read whole (up to 1 MiB: past it the
 * upstream is cut off and the client gets a 502) and redacted. A client that
 * leaves mid-stream destroys the tap, which aborts the upstream request; it is billed what was
 * delivered (prompt plus completion text so far, counted with the tokenizer), never nothing.
 * None of our secrets an upstream echoes reaches the client: headers and 2xx bodies are cleared
 * of the configured secrets (streams too, also a secret cut across two chunks).
 */
import type { FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { JsonTap } from '../metering/json-tap.js';
import { SseTap } from '../metering/sse-tap.js';
import { usageFromJson } from '../metering/usage.js';
import { clientResponseHeaders } from '../proxy/headers.js';
import { ScrubStream } from '../proxy/scrub-stream.js';
import { ApiError, upstreamErrorTooLarge } from '../errors.js';
import { upstreamBodyFailure, type UpstreamResponse } from '../proxy/forward.js';
import { BILL_NOTHING, type CallOutcome, type ProxyCall } from './proxy-call.js';

/** JSON answers up to this size (nearly all) are read whole and sent with their length. */
const WHOLE_BODY_MAX_BYTES = 1024 * 1024;

/**
 * Most of an upstream error body the gateway reads. OpenAI's are well under 1 KiB; past this the
 * upstream is broken (an endless body would otherwise be buffered whole), so it is cut off and the
 * client gets a 502 naming the upstream's status: a truncated body would be invalid JSON under
 * the upstream's status, which an SDK could neither parse nor tell from a real answer.
 */
export const ERROR_BODY_MAX_BYTES = 1024 * 1024;

const isOk = (status: number): boolean => status >= 200 && status < 300;

/** An error answer's body as text, at most ERROR_BODY_MAX_BYTES; past it the upstream is aborted (502). */
async function readErrorBody(response: UpstreamResponse): Promise<string> {
  const tooLarge = () => {
    response.body.destroy(); // aborts the upstream request: nothing more is read
    return upstreamErrorTooLarge(response.statusCode, ERROR_BODY_MAX_BYTES);
  };
  if (Number(response.headers['content-length'] ?? 0) > ERROR_BODY_MAX_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > ERROR_BODY_MAX_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** The assistant text of a chat completion (or text completion) body. */
function completionTextOf(body: unknown): string {
  const choices = (body as { choices?: { message?: { content?: unknown }; text?: unknown }[] } | null)?.choices;
  if (!Array.isArray(choices)) return '';
  return choices.map((c) => (typeof c.message?.content === 'string' ? c.message.content : typeof c.text === 'string' ? c.text : '')).join('');
}

/** What a complete 2xx JSON answer bills: its reported usage, or its completion text to count. */
export function meterJson(parsed: unknown): CallOutcome {
  const reported = usageFromJson(parsed);
  return { reported, delivered: reported === null ? completionTextOf(parsed) : '' };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not JSON after all: nothing to read
  }
}

/**
 * Reads an answer whole and settles the call before handing it back: an error bills nothing (it
 * reports no usage); a 2xx bills its usage or its counted prompt and completion. `json` is the
 * parsed 2xx body (undefined when it is not JSON, or for an error).
 */
export async function readAnswer(call: ProxyCall, response: UpstreamResponse): Promise<{ text: string; json: unknown }> {
  if (!isOk(response.statusCode)) {
    await call.settle(BILL_NOTHING);
    return { text: await readErrorBody(response), json: undefined };
  }
  const text = await response.body.text();
  const json = parseJson(text);
  await call.settle(meterJson(json));
  return { text, json };
}

/**
 * Streams an SSE answer through its tap to the client. An upstream that breaks off or stalls
 * mid-stream (not a client that left) ends the client's stream with an error event in OpenAI's
 * shape, as an event too large does, instead of a cut connection. `done` runs once: when the tap
 * has taken all of the body, or as soon as the body failed or was destroyed (an event too large, a
 * client gone: the call's signal then aborts the upstream request, which fails the body).
 *
 * Below Fastify (`reply.hijack()`: the status and headers written at once, the body pumped
 * through the tap into the response) rather than `reply.send(stream)`, and with plain listeners
 * rather than `finished()`: a stream can stay open for hours, and those keep, for every open
 * stream and as long as it lasts, five end-of-stream watchers, a second copy of every header and
 * the route's pending promise: about 8 KB per open stream in a heap snapshot. Fastify's
 * onResponse hooks and its request log still run (they wait for the response's 'finish'); this
 * gateway has no onSend hook. Listeners are added with `on`, not `once`: each of these events
 * comes once per stream (and `done` is guarded), and `once` keeps a wrapper object and a bound
 * function per listener, for as long as the stream is open.
 */
function streamSse(reply: FastifyReply, body: UpstreamResponse['body'], tap: SseTap, done: () => void): FastifyReply {
  let called = false;
  // A microtask later, as a promise from finished() would have run it: after the other listeners.
  const once = () =>
    queueMicrotask(() => {
      if (called) return;
      called = true;
      void done();
    });
  body.on('error', (err) => {
    const failure = upstreamBodyFailure(err);
    if (failure instanceof ApiError) tap.endBroken(failure);
    else tap.destroy();
  });
  // The body failed or was destroyed before its end.
  body.on('close', () => {
    if (!body.readableEnded) once();
  });
  // The tap has taken all of the body (or failed, or was destroyed).
  tap.on('finish', once);
  tap.on('error', once);
  const res = reply.raw;
  tap.on('close', () => {
    // Stop reading the upstream's stream, as a pipeline would; a tap destroyed before its end cuts
    // the client's connection (it cannot be told otherwise once the headers are out).
    body.destroy();
    if (!tap.readableEnded) res.destroy();
    once();
  });
  reply.hijack();
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  pump(body, tap);
  pump(tap, res);
  return reply;
}

/**
 * `src` into `dest` as `src.pipe(dest)` would here: chunks written as they come, `src` paused
 * while `dest` is full and resumed on its 'drain', `dest` ended at `src`'s end, and nothing more
 * taken from `src` once `dest` is destroyed. Three listeners instead of pipe()'s nine closures and
 * five `once` wrappers, which an open stream keeps for as long as it lasts; errors and closes are
 * streamSse's listeners' to handle, as they were with pipe().
 */
function pump(src: Readable, dest: Writable): void {
  src.on('data', (chunk: Buffer | string) => {
    if (dest.destroyed || dest.writableEnded) return void src.pause();
    if (!dest.write(chunk)) src.pause();
  });
  dest.on('drain', () => src.resume());
  src.on('end', () => {
    if (!dest.destroyed && !dest.writableEnded) dest.end();
  });
}

/** The /v1 responder: the upstream's status, headers and body as they came (errors redacted). */
export async function relay(call: ProxyCall, reply: FastifyReply, response: UpstreamResponse): Promise<FastifyReply> {
  const status = response.statusCode;
  const redactor = call.context.redactor;
  reply.code(status).headers(clientResponseHeaders(response.headers, redactor)).headers(call.admission!.headers);

  if (!isOk(status)) {
    // Error bodies are small: read them whole and make sure no secret of ours rides along.
    const { text } = await readAnswer(call, response);
    reply.removeHeader('content-length');
    return reply.send(call.context.redactor.text(text));
  }

  const contentType = String(response.headers['content-type'] ?? '');
  const length = Number(response.headers['content-length'] ?? NaN);
  if (contentType.includes('json') && length <= WHOLE_BODY_MAX_BYTES) {
    // One read, one parse, sent as it came; settled while it is being sent.
    const body = Buffer.from(await response.body.arrayBuffer());
    const text = body.toString('utf8');
    void call.settle(meterJson(parseJson(text)));
    return reply.send(redactor.hasSecret(text) ? redactor.secretsOnly(text) : body);
  }

  const tap = contentType.includes('text/event-stream')
    ? new SseTap({
        stripUsageChunk: call.stripUsageChunk,
        redact: (text) => redactor.secretsOnly(text),
        // An event past the cap ended the client's stream: stop the upstream's too.
        onTooLarge: () => response.body.destroy(),
      })
    : contentType.includes('json')
      ? new JsonTap(redactor.scrubber())
      : null;
  if (tap === null) {
    // Neither JSON nor a stream (audio, files): nothing to read the usage from.
    await call.settle(BILL_NOTHING);
    const scrub = new ScrubStream(redactor.scrubber());
    void pipeline(response.body, scrub).catch(() => undefined);
    return reply.send(scrub);
  }
  // Settled when the body is over: complete, or cut short by either side.
  const end = () => call.settle({ reported: tap.usage(), delivered: tap.completionText() });
  if (tap instanceof SseTap) {
    reply.removeHeader('content-length');
    // Cut short (the gateway is stopping): the client's stream ends with the reason as its last event.
    call.onInterrupt((err) => tap.endWithError(err, () => response.body.destroy()));
    return streamSse(reply, response.body, tap, end);
  } else {
    void pipeline(response.body, tap).then(end, end);
  }
  return reply.send(tap);
}
