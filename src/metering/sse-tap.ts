/**
 * A tap on a server-sent-events stream: passes every event on as soon as it is complete, reads the
 * usage the upstream reports (chat `usage` chunk, Responses `response.completed`), and can drop the
 * usage-only chunk the gateway asked for on the client's behalf, so the client sees exactly the
 * chunks it asked for (also without the `"usage":null` field OpenAI then adds to every chunk). It
 * parses JSON only for events that carry a usage object.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parseUsage, type TokenUsage } from './usage.js';

export interface SseTapOptions {
  /** Drop chat chunks that carry usage and no choices (the client did not ask for them). */
  stripUsageChunk: boolean;
}

const SEPARATOR = /\r?\n\r?\n/;
const MAX_DELTA_BYTES = 4 * 1024 * 1024;
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
  /** Raw delta payloads, parsed only if the stream ends without usage (to estimate it). */
  private readonly deltas: string[] = [];
  private deltaBytes = 0;
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
    if (out.length > 0) this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const rest = this.pending + this.decoder.end();
    const last = rest.length > 0 ? this.inspect(rest) : '';
    if (last.length > 0) this.push(last);
    done();
  }

  /** Reads one event; returns what goes on to the client ('' for nothing). */
  private inspect(event: string): string {
    const data = dataOf(event);
    if (data === null || data === '[DONE]') return event;
    if (data.includes('"delta"') && this.deltaBytes < MAX_DELTA_BYTES) {
      this.deltas.push(data);
      this.deltaBytes += data.length;
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
    let text = '';
    for (const data of this.deltas) {
      try {
        const payload = JSON.parse(data) as { choices?: { delta?: { content?: unknown } }[]; delta?: unknown };
        const content = payload.choices?.[0]?.delta?.content ?? payload.delta;
        if (typeof content === 'string') text += content;
      } catch {
        // not JSON: nothing to count
      }
    }
    return text;
  }
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
