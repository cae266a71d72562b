/**
 * The SSE tap's edges that the mutation run found untested (test/MUTATION.md, "Accounting"): the
 * second `"usage":null` pattern, a blank line split across chunks right after another event, the
 * unterminated last event in pieces, the stream once ended early (nothing more pushed, no error),
 * events without data, the 4 MiB bound of the delivered text, which events are read for usage and
 * which are dropped, and the JSON string scanner's whitespace, colon and broken-string cases.
 */
import { describe, expect, it } from 'vitest';
import { SseTap, MAX_EVENT_CHARS, jsonStringField } from '../../src/metering/sse-tap.js';
import { upstreamTimeout } from '../../src/errors.js';

interface Run {
  tap: SseTap;
  out: () => string;
  errors: Error[];
  /** Exceptions thrown by the tap's own listeners while it emitted an event (uncaught otherwise). */
  thrown: unknown[];
  ended: Promise<void>;
}

function start(options: ConstructorParameters<typeof SseTap>[0] = { stripUsageChunk: false }): Run {
  const tap = new SseTap(options);
  const chunks: string[] = [];
  const errors: Error[] = [];
  const thrown: unknown[] = [];
  const emit = tap.emit.bind(tap);
  tap.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    try {
      return emit(event, ...args);
    } catch (e) {
      thrown.push(e);
      return true;
    }
  };
  tap.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  tap.on('error', (e: Error) => errors.push(e));
  const ended = new Promise<void>((resolve) => tap.once('end', () => resolve()));
  return { tap, out: () => chunks.join(''), errors, thrown, ended };
}

/** Writes the chunks, ends the stream and waits for the client's side to end. */
async function run(chunks: (string | Buffer)[], options?: ConstructorParameters<typeof SseTap>[0]): Promise<Run> {
  const r = start(options);
  for (const c of chunks) r.tap.write(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  r.tap.end();
  await r.ended;
  return r;
}

/** Lets queued callbacks (an error emitted on the next tick) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const USAGE_ONLY = 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n';

describe('SseTap: events and chunking', () => {
  it('drops a leading "usage":null field too (the second pattern), stripping on', async () => {
    const r = await run(['data: {"usage":null,"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'], { stripUsageChunk: true });
    expect(r.out()).toBe('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n');
  });

  it('finds a blank line split across chunks right after another event (a short rest)', async () => {
    // The first chunk ends one event and begins a comment event whose blank line comes next.
    const r = await run(['data: {"a":1}\n\n:\n', '\n' + USAGE_ONLY], { stripUsageChunk: true });
    expect(r.out()).toBe('data: {"a":1}\n\n:\n\n');
    expect(r.tap.usage()).toEqual({ promptTokens: 3, completionTokens: 4, cachedTokens: 0 });
  });

  it('reads an unterminated last event that came in pieces as it was sent', async () => {
    const r = await run(['data: {"choices":[],"usage":{"prompt_tokens":1,', '"completion_tokens":2}}']);
    expect(r.out()).toBe('data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}');
    expect(r.tap.usage()).toEqual({ promptTokens: 1, completionTokens: 2, cachedTokens: 0 });
  });

  it('passes on events without data lines (comments, event names only)', async () => {
    const r = await run([': keep-alive\n\nevent: ping\n\ndata: [DONE]\n\n']);
    expect(r.out()).toBe(': keep-alive\n\nevent: ping\n\ndata: [DONE]\n\n');
    expect(r.errors).toEqual([]);
  });
});

describe('SseTap: once the client stream was ended early', () => {
  it('pushes nothing for chunks written after endWithError, and raises no error', async () => {
    const r = start();
    r.tap.write(Buffer.from('data: {"n":1}\n\n'));
    let stopped = 0;
    r.tap.endWithError(upstreamTimeout(), () => stopped++);
    r.tap.write(Buffer.from('data: {"n":2}\n\n'));
    await r.ended;
    await settle();
    expect(r.out()).toBe(`data: {"n":1}\n\ndata: ${JSON.stringify(upstreamTimeout().toBody())}\n\n`);
    expect(r.errors).toEqual([]);
    expect(stopped).toBe(1);
  });

  it('pushes nothing at the end for an incomplete character held back before endWithError', async () => {
    const r = start();
    r.tap.write(Buffer.from([0x64, 0x61, 0xe2, 0x82])); // "da" and the first two bytes of "€"
    r.tap.endWithError(upstreamTimeout(), () => undefined);
    r.tap.end();
    await r.ended;
    await settle();
    expect(r.out()).toBe(`data: ${JSON.stringify(upstreamTimeout().toBody())}\n\n`);
    expect(r.errors).toEqual([]);
  });

  it('ignores endWithError and endBroken after an event too large', async () => {
    let tooLarge = 0;
    const r = start({ stripUsageChunk: false, onTooLarge: () => tooLarge++ });
    r.tap.write(Buffer.from('data: ' + 'x'.repeat(MAX_EVENT_CHARS)));
    await r.ended;
    let stopped = 0;
    r.tap.endWithError(upstreamTimeout(), () => stopped++);
    r.tap.endBroken(upstreamTimeout());
    await settle();
    expect(r.out()).toMatch(/^data: \{"error":\{[^\n]*\}\}\n\n$/);
    expect(r.out()).not.toContain(upstreamTimeout().message);
    expect(r.errors).toEqual([]);
    expect([tooLarge, stopped]).toEqual([1, 0]);
  });

  it('ends for an event too large without an onTooLarge callback', async () => {
    const r = start({ stripUsageChunk: false });
    r.tap.write(Buffer.from('data: ' + 'x'.repeat(MAX_EVENT_CHARS)));
    await r.ended;
    await settle();
    expect(r.out()).toMatch(/^data: \{"error":\{[^\n]*\}\}\n\n$/);
    expect(r.errors).toEqual([]);
    expect(r.thrown).toEqual([]);
  });
});

describe('SseTap: delivered text', () => {
  it('keeps 4 MiB of delivered text and no more', async () => {
    const piece = 'a'.repeat(512 * 1024);
    const events = Array.from({ length: 9 }, (_, i) => `data: {"choices":[{"index":0,"delta":{"content":"${i === 8 ? 'b'.repeat(512 * 1024) : piece}"}}]}\n\n`);
    const r = await run(events);
    const text = r.tap.completionText();
    expect(text.length).toBe(4 * 1024 * 1024);
    expect(text.includes('b')).toBe(false);
  });

  it('keeps no text of an event without "delta", and none of a delta without content', async () => {
    const r = await run([
      'data: {"choices":[{"index":0,"message":{"role":"assistant","content":"whole"}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"content":null}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n',
    ]);
    expect(r.tap.completionText()).toBe('ok');
    expect(r.errors).toEqual([]);
  });
});

describe('SseTap: reading usage', () => {
  it('does not read an event whose usage key is only written with an escape (no literal "usage")', async () => {
    const event = 'data: {"choices":[],"\\u0075sage":{"prompt_tokens":5,"completion_tokens":6}}\n\n';
    const r = await run([event], { stripUsageChunk: true });
    expect(r.out()).toBe(event);
    expect(r.tap.usage()).toBeNull();
  });

  it('reads a usage that is the first key of the chunk', async () => {
    const r = await run(['data: {"usage":{"prompt_tokens":7,"completion_tokens":8},"choices":[]}\n\n']);
    expect(r.tap.usage()).toEqual({ promptTokens: 7, completionTokens: 8, cachedTokens: 0 });
  });

  it('reads the usage of a chunk that also holds a "usage":null elsewhere', async () => {
    const r = await run(['data: {"choices":[],"meta":{"usage":null},"usage":{"prompt_tokens":2,"completion_tokens":3}}\n\n']);
    expect(r.tap.usage()).toEqual({ promptTokens: 2, completionTokens: 3, cachedTokens: 0 });
  });

  it('passes a usage field that is no usage, and keeps the usage reported before it', async () => {
    const odd = 'data: {"choices":[],"usage":{"total_tokens":9}}\n\n';
    const r = await run([USAGE_ONLY, odd, 'data: {"type":"x","usage":{"total_tokens":9}}\n\n'], { stripUsageChunk: true });
    expect(r.out()).toBe(odd + 'data: {"type":"x","usage":{"total_tokens":9}}\n\n');
    expect(r.tap.usage()).toEqual({ promptTokens: 3, completionTokens: 4, cachedTokens: 0 });
    expect(r.errors).toEqual([]);
  });

  it('keeps a chunk with choices that also carries usage, stripping on', async () => {
    const event = 'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n';
    const r = await run([event], { stripUsageChunk: true });
    expect(r.out()).toBe(event);
    expect(r.tap.usage()).toEqual({ promptTokens: 1, completionTokens: 1, cachedTokens: 0 });
  });
});

describe('jsonStringField', () => {
  it('skips every JSON space around the colon', () => {
    expect(jsonStringField('{"content" \n\r\t: \t\r\n "hi"}', 'content')).toBe('hi');
    expect(jsonStringField('{"content"\r:\r"cr"}', 'content')).toBe('cr');
    expect(jsonStringField('{"content"\t:\t"tab"}', 'content')).toBe('tab');
  });

  it('takes the key, not the same text as a value', () => {
    expect(jsonStringField('{"type":"content","content":"real"}', 'content')).toBe('real');
  });

  it('gives up on the first string that does not parse', () => {
    expect(jsonStringField('{"content":"\\q","more":{"content":"later"}}', 'content')).toBeNull();
  });
});
