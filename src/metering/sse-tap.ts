/**
 * A tap on a server-sent-events stream: passes every event on as soon as it is complete, reads the
 * usage the upstream reports (chat `usage` chunk, Responses `response.completed`), and can drop the
 * usage-only chunk the gateway asked for on the client's behalf, so the client sees exactly the
 * chunks it asked for (also without the `"usage":null` field OpenAI then adds to every chunk). It
 * parses JSON only for events that carry a usage object.
 *
 * Bounded and linear whatever the upstream sends: each chunk is scanned once for the end of an
 * event (the text before it is kept in parts, never rescanned or copied until the event is
 * complete), and an event may hold at most MAX_EVENT_CHARS (1 MiB of text, its blank line
 * included). Past that the client's stream ends with an OpenAI-shaped error event and the tap
 * calls `onTooLarge` once the client has it, for the caller to abort the upstream. Only complete
 * events go on, so `redact` (the configured secrets out) sees every secret whole.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { upstreamEventTooLarge, type ApiError } from '../errors.js';
import type { TokenUsage } from '../contract.js';
import { parseUsage } from './usage.js';

export interface SseTapOptions {
  /** Drop chat chunks that carry usage and no choices (the client did not ask for them). */
  stripUsageChunk: boolean;
  /** Applied to the text that goes on (complete events only): removes our secrets. */
  redact?: (text: string) => string;
  /** Called once the client has the error event of an event too large: abort the upstream. */
  onTooLarge?: () => void;
}

/** The most text one event may hold, its blank line included. */
export const MAX_EVENT_CHARS = 1024 * 1024;
/** The end of an event: a blank line (LF or CRLF). At most 4 characters long. */
const SEPARATOR = /\r?\n\r?\n/g;
/** The characters a separator may have begun with at the end of the text before a chunk. */
const SEPARATOR_LEAD = 3;
/** Delivered text kept per stream for counting (far beyond any completion). */
const MAX_DELIVERED_CHARS = 4 * 1024 * 1024;
/** `"usage":null`, which OpenAI puts on every chunk but the usage one when include_usage is on. */
const NULL_USAGE = /"usage"\s*:\s*null/;
const NULL_USAGE_FIELD = [/,\s*"usage"\s*:\s*null(?=\s*[,}])/, /"usage"\s*:\s*null\s*,\s*/];

/** The event without its `"usage":null` field (as the client would have had it without include_usage). */
function withoutNullUsage(event: string): string {
  for (const pattern of NULL_USAGE_FIELD) if (pattern.test(event)) return event.replace(pattern, '');
  return event;
}

export class SseTap extends Transform {
  private reported: TokenUsage | null = null;
  /** The text of the event being received (no blank line in it yet), in the pieces it came in. */
  private parts: string[] = [];
  private partsChars = 0;
  /** The last few characters of `parts`, where the next chunk's separator may have begun. */
  private lead = '';
  /** Set once the client's stream was ended early (an event past the cap, the gateway stopping): the rest is ignored. */
  private cutShort = false;
  /** Set once the upstream broke off (endBroken): the client's stream is over. */
  private broken = false;
  /**
   * The text delivered so far (chat content deltas, Responses text deltas), for counting usage if
   * the stream ends without reporting it (a client that left). Only the text is kept, not the
   * chunks' JSON around it, which is 30-50 times larger.
   */
  private readonly delivered: string[] = [];
  private deliveredChars = 0;
  // StringDecoder, not TextDecoder: no native converter per stream (1,000 open streams add up).
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly options: SseTapOptions) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    // Once ended for an event too large, the rest is not read: holding `done` back stops the
    // upstream body (backpressure) until the caller aborts it.
    if (this.cutShort) return;
    if (this.broken) return done();
    const text = this.decoder.write(chunk);
    // Scanned once: the new text, and before it the few characters a separator may start with.
    const probe = this.lead.length > 0 ? this.lead + text : text;
    let start = this.lead.length; // where the unread text begins in `probe` (the lead is in parts)
    let out = '';
    SEPARATOR.lastIndex = 0;
    for (let match = SEPARATOR.exec(probe); match !== null; match = SEPARATOR.exec(probe)) {
      const end = match.index + match[0].length;
      const piece = probe.slice(start, end);
      const size = this.partsChars + piece.length;
      if (size > MAX_EVENT_CHARS) return this.endTooLarge(out);
      const event = this.parts.length === 0 ? piece : this.parts.join('') + piece;
      this.parts = [];
      this.partsChars = 0;
      start = end;
      out += this.inspect(event);
    }
    const rest = probe.slice(start);
    if (rest.length > 0) {
      if (this.partsChars + rest.length > MAX_EVENT_CHARS) return this.endTooLarge(out);
      this.parts.push(rest);
      this.partsChars += rest.length;
    }
    this.lead = start > this.lead.length ? rest.slice(-SEPARATOR_LEAD) : probe.slice(-SEPARATOR_LEAD);
    this.send(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.cutShort || this.broken) return done();
    const rest = this.parts.join('') + this.decoder.end();
    this.send(rest.length > 0 ? this.inspect(rest) : '');
    done();
  }

  /** Pushes `out` (complete events) with our secrets removed. */
  private send(out: string): void {
    if (out.length === 0) return;
    this.push(this.options.redact === undefined ? out : this.options.redact(out));
  }

  /**
   * An event went past the cap: the events complete before it (`out`) go on, then an error event
   * in OpenAI's shape, and the client's stream ends. The upstream is to be aborted (onTooLarge)
   * once the client has read it all; until then nothing more is read from it.
   */
  private endTooLarge(out: string): void {
    this.cutShort = true;
    this.parts = [];
    this.partsChars = 0;
    this.lead = '';
    this.send(out);
    this.push(`data: ${JSON.stringify(upstreamEventTooLarge(MAX_EVENT_CHARS).toBody())}\n\n`);
    this.once('end', () => this.options.onTooLarge?.());
    this.push(null);
  }

  /**
   * Ends the client's stream now with `err` as its last event (in OpenAI's shape), after the
   * complete events already read; the rest of the upstream's stream is not read (`stop` aborts it
   * once the client has it all).
   */
  endWithError(err: ApiError, stop: () => void): void {
    if (this.cutShort || this.broken || this.writableEnded || this.destroyed) return;
    this.cutShort = true;
    this.parts = [];
    this.partsChars = 0;
    this.lead = '';
    this.push(`data: ${JSON.stringify(err.toBody())}\n\n`);
    this.once('end', stop);
    this.push(null);
  }

  /**
   * The upstream broke off or stalled in the middle of the stream (`error`: the 502 or 504 it would
   * have been before the headers): the events complete so far have gone on, the incomplete one is
   * dropped, an error event in OpenAI's shape follows and the client's stream ends, so that the
   * client can tell the answer is incomplete, and why, instead of seeing its connection cut.
   */
  endBroken(error: ApiError): void {
    if (this.cutShort || this.broken || this.destroyed) return;
    this.broken = true;
    this.parts = [];
    this.partsChars = 0;
    this.lead = '';
    this.push(`data: ${JSON.stringify(error.toBody())}\n\n`);
    this.push(null);
    this.end();
  }

  /** Reads one event; returns what goes on to the client ('' for nothing). */
  private inspect(event: string): string {
    const data = dataOf(event);
    if (data === null || data === '[DONE]') return event;
    if (this.deliveredChars < MAX_DELIVERED_CHARS && data.includes('"delta"')) {
      const text = jsonStringField(data, data.includes('"choices"') ? 'content' : 'delta');
      if (text !== null && text.length > 0) {
        this.delivered.push(text);
        this.deliveredChars += text.length;
      }
    }
    const at = data.indexOf('"usage"');
    if (at === -1) return event;
    // A chunk whose only usage is `"usage":null` (every chat chunk of an OpenAI stream with
    // include_usage; Responses' response.created): nothing to read, no JSON to parse. A chat
    // client that did not ask for usage would not have had that field, so it goes without it.
    if (at === data.lastIndexOf('"usage"') && NULL_USAGE.test(data)) {
      return this.options.stripUsageChunk && data.includes('"choices"') ? withoutNullUsage(event) : event;
    }
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return event;
    }
    const usage = parseUsage(payload.usage) ?? parseUsage((payload.response as Record<string, unknown> | undefined)?.usage);
    if (usage !== null) this.reported = usage;
    const usageOnly = Array.isArray(payload.choices) && payload.choices.length === 0 && usage !== null;
    return this.options.stripUsageChunk && usageOnly ? '' : event;
  }

  /** The usage the stream reported, or null. */
  usage(): TokenUsage | null {
    return this.reported;
  }

  /** The text the stream delivered (chat deltas or Responses text deltas), for estimating usage. */
  completionText(): string {
    return this.delivered.join('');
  }
}

const isJsonSpace = (c: string | undefined) => c === ' ' || c === '\n' || c === '\r' || c === '\t';

/**
 * The decoded value of the first `"key": "…"` member of a JSON text whose value is a string, or
 * null. Found by scanning, without parsing the whole text: a quoted key cannot occur inside a JSON
 * string (its quotes would be escaped there).
 */
export function jsonStringField(json: string, key: string): string | null {
  const needle = `"${key}"`;
  for (let at = json.indexOf(needle); at !== -1; at = json.indexOf(needle, at + needle.length)) {
    let i = at + needle.length;
    while (isJsonSpace(json[i])) i++;
    if (json[i] !== ':') continue;
    i++;
    while (isJsonSpace(json[i])) i++;
    if (json[i] !== '"') continue;
    let end = i + 1;
    while (end < json.length && json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
    try {
      return JSON.parse(json.slice(i, end + 1)) as string;
    } catch {
      return null;
    }
  }
  return null;
}

/** The joined `data:` lines of one SSE event, or null when it has none. */
export function dataOf(event: string): string | null {
  let data: string | null = null;
  for (const line of event.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.slice(line[5] === ' ' ? 6 : 5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}
