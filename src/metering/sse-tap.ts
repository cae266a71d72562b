/**
 * A tap on a server-sent-events stream: passes every event on as soon as it is complete, reads the
 * usage the upstream reports (chat `usage` chunk, Responses `response.completed`), and can drop the
 * usage-only chunk the gateway asked for on the client's behalf, so the client sees exactly the
 * chunks it asked for (also without the `"usage":null` field OpenAI then adds to every chunk). It
 * parses JSON only for events that carry a usage object. Only complete events go on, so `redact`
 * (the configured secrets out) sees every secret whole.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parseUsage, type TokenUsage } from './usage.js';

export interface SseTapOptions {
  /** Drop chat chunks that carry usage and no choices (the client did not ask for them). */
  stripUsageChunk: boolean;
  /** Applied to the text that goes on (complete events only): removes our secrets. */
  redact?: (text: string) => string;
}

const SEPARATOR = /\r?\n\r?\n/;
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
  private pending = '';
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
    this.pending += this.decoder.write(chunk);
    let out = '';
    for (;;) {
      const match = SEPARATOR.exec(this.pending);
      if (match === null) break;
      const end = match.index + match[0].length;
      const event = this.pending.slice(0, end);
      this.pending = this.pending.slice(end);
      out += this.inspect(event);
    }
    this.send(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const rest = this.pending + this.decoder.end();
    const last = rest.length > 0 ? this.inspect(rest) : '';
    this.send(last);
    done();
  }

  /** Pushes `out` (complete events) with our secrets removed. */
  private send(out: string): void {
    if (out.length === 0) return;
    this.push(this.options.redact === undefined ? out : this.options.redact(out));
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
