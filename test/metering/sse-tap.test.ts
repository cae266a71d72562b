/**
 * SseTap: passes SSE events through unchanged (or without the usage-only chunk the gateway asked
 * for), whatever the chunking: events split at every byte offset, one byte at a time, multi-byte
 * characters cut in half, LF and CRLF separators, multi-line data, a last event without its blank
 * line. Reads chat and Responses usage, and the delivered text for estimates.
 */
import { describe, expect, it } from 'vitest';
import { dataOf, jsonStringField, SseTap } from '../../src/metering/sse-tap.js';

async function run(strip: boolean, chunks: Buffer[]): Promise<{ out: string; tap: SseTap; pushes: number }> {
  const tap = new SseTap({ stripUsageChunk: strip });
  const parts: Buffer[] = [];
  tap.on('data', (c: Buffer) => parts.push(Buffer.from(c)));
  const ended = new Promise<void>((resolve, reject) => {
    tap.on('end', resolve);
    tap.on('error', reject);
  });
  for (const chunk of chunks) tap.write(chunk);
  tap.end();
  await ended;
  return { out: Buffer.concat(parts).toString('utf8'), tap, pushes: parts.length };
}

const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
const event = (payload: unknown, eol = '\n') => `data: ${JSON.stringify(payload)}${eol}${eol}`;

function chatStream(eol = '\n', content = ['Héllo ', '日本語 ', '🙂 ', 'wörld']): { events: string[]; usageEvent: string } {
  const events = [
    event({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }, eol),
    ...content.map((c) => event({ ...base, choices: [{ index: 0, delta: { content: c }, finish_reason: null }] }, eol)),
    event({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, eol),
  ];
  const usageEvent = event({ ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46, prompt_tokens_details: { cached_tokens: 5 } } }, eol);
  return { events, usageEvent };
}

const DONE = (eol = '\n') => `data: [DONE]${eol}${eol}`;
const usage = { promptTokens: 12, completionTokens: 34, cachedTokens: 5 };

function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

describe('SseTap', () => {
  for (const eol of ['\n', '\r\n']) {
    const label = eol === '\n' ? 'LF' : 'CRLF';
    const { events, usageEvent } = chatStream(eol);
    const full = events.join('') + usageEvent + DONE(eol);
    const stripped = events.join('') + DONE(eol);
    const bytes = Buffer.from(full, 'utf8');

    it(`${label}: passes the stream through unchanged with strip off, split at every byte offset`, async () => {
      for (const chunks of splits(bytes)) {
        const { out, tap } = await run(false, chunks);
        expect(out).toBe(full);
        expect(tap.usage()).toEqual(usage);
        expect(tap.completionText()).toBe('Héllo 日本語 🙂 wörld');
      }
    });

    it(`${label}: drops exactly the usage-only chunk with strip on, split at every byte offset`, async () => {
      for (const chunks of splits(bytes)) {
        const { out, tap } = await run(true, chunks);
        expect(out).toBe(stripped);
        expect(tap.usage()).toEqual(usage);
        expect(tap.completionText()).toBe('Héllo 日本語 🙂 wörld');
      }
    });

    it(`${label}: one byte at a time, and three-way splits`, async () => {
      const single = [...bytes].map((b) => Buffer.from([b]));
      expect((await run(true, single)).out).toBe(stripped);
      expect((await run(false, single)).out).toBe(full);
      for (let i = 1; i < bytes.length; i += 7) {
        for (let j = i + 1; j < bytes.length; j += 13) {
          const chunks = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
          expect((await run(true, chunks)).out).toBe(stripped);
        }
      }
    });
  }

  it('forwards each complete event as soon as it is complete, not held back to the end', async () => {
    const { events } = chatStream();
    const tap = new SseTap({ stripUsageChunk: true });
    const seen: string[] = [];
    tap.on('data', (c: Buffer) => seen.push(c.toString('utf8')));
    tap.write(Buffer.from(events[0]! + events[1]!.slice(0, 10)));
    await new Promise((r) => setImmediate(r));
    expect(seen.join('')).toBe(events[0]);
    tap.write(Buffer.from(events[1]!.slice(10)));
    await new Promise((r) => setImmediate(r));
    expect(seen.join('')).toBe(events[0]! + events[1]!);
    tap.end();
  });

  it('keeps a usage chunk that also carries choices (nothing may be lost), and reads its usage', async () => {
    const mixed = event({ ...base, choices: [{ index: 0, delta: { content: 'end' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 2 } });
    const { out, tap } = await run(true, [Buffer.from(mixed + DONE())]);
    expect(out).toBe(mixed + DONE());
    expect(tap.usage()).toEqual({ promptTokens: 1, completionTokens: 2, cachedTokens: 0 });
  });

  it('multi-line data, comments, event names and ids pass through; a last event without blank line is flushed', async () => {
    const text =
      ': keep-alive comment\n\n' +
      'event: message\nid: 7\ndata: {"choices":[{"delta":\ndata: {"content":"two lines"}}]}\n\n' +
      'retry: 1000\n\n' +
      `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } })}\n\n` +
      'data: [DONE]';
    const { out, tap } = await run(true, [Buffer.from(text)]);
    expect(out).toBe(text.replace(/data: \{"choices":\[\],"usage"[^\n]*\n\n/, ''));
    expect(tap.usage()).toEqual({ promptTokens: 3, completionTokens: 4, cachedTokens: 0 });
    expect(tap.completionText()).toBe('two lines');
  });

  it('Responses API streams: usage from response.completed, nothing stripped, text deltas counted', async () => {
    const ev = (type: string, payload: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;
    const text =
      ev('response.created', { response: { id: 'r', status: 'in_progress', usage: null } }) +
      ev('response.output_text.delta', { delta: 'Hello ' }) +
      ev('response.output_text.delta', { delta: 'there' }) +
      ev('response.completed', { response: { id: 'r', status: 'completed', usage: { input_tokens: 20, output_tokens: 7, input_tokens_details: { cached_tokens: 16 } } } });
    for (const strip of [false, true]) {
      const { out, tap } = await run(strip, splits(Buffer.from(text))[100]!);
      expect(out).toBe(text);
      expect(tap.usage()).toEqual({ promptTokens: 20, completionTokens: 7, cachedTokens: 16 });
      expect(tap.completionText()).toBe('Hello there');
    }
  });

  it('no usage in the stream: usage() is null and the text is still there for an estimate', async () => {
    const { events } = chatStream();
    const { out, tap } = await run(true, [Buffer.from(events.join('') + DONE())]);
    expect(out).toBe(events.join('') + DONE());
    expect(tap.usage()).toBeNull();
    expect(tap.completionText()).toBe('Héllo 日本語 🙂 wörld');
  });

  it('malformed JSON mentioning usage is passed on and ignored', async () => {
    const text = 'data: {"usage": {not json\n\ndata: [DONE]\n\n';
    const { out, tap } = await run(true, [Buffer.from(text)]);
    expect(out).toBe(text);
    expect(tap.usage()).toBeNull();
  });

  it('OpenAI-style `"usage":null` on every chunk: hidden from a client that did not ask, kept for one that did', async () => {
    // With include_usage, OpenAI adds "usage":null to every chunk before the usage one. A client
    // that did not ask for usage would never see that field: with strip on, it must not either.
    const withNull = (payload: Record<string, unknown>) => `data: ${JSON.stringify({ ...payload, usage: null })}\n\n`;
    const plain = (payload: Record<string, unknown>) => `data: ${JSON.stringify(payload)}\n\n`;
    const payloads = [
      { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: { content: 'usage: null, "usage":null' }, finish_reason: null }] },
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    ];
    const usageChunk = plain({ ...base, choices: [], usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 } });
    const upstream = payloads.map(withNull).join('') + usageChunk + DONE();
    for (const chunks of splits(Buffer.from(upstream)).filter((_, i) => i % 5 === 0)) {
      const stripped = await run(true, chunks);
      expect(stripped.out).toBe(payloads.map(plain).join('') + DONE());
      expect(stripped.tap.usage()).toEqual({ promptTokens: 5, completionTokens: 6, cachedTokens: 0 });
      expect(stripped.tap.completionText()).toBe('usage: null, "usage":null');
      const kept = await run(false, chunks);
      expect(kept.out).toBe(upstream);
    }
  });
});

describe('dataOf', () => {
  it('joins data lines, with or without the space, LF or CRLF; null without data', () => {
    expect(dataOf('data: a\ndata:b\n\n')).toBe('a\nb');
    expect(dataOf('event: x\r\ndata: {"a":1}\r\n\r\n')).toBe('{"a":1}');
    expect(dataOf(': comment\n\n')).toBeNull();
    expect(dataOf('data:\n\n')).toBe('');
  });
});

describe('jsonStringField', () => {
  it('decodes the first string-valued member, escapes and all, like JSON.parse', () => {
    const values = ['plain', 'quote " and \\ backslash', 'new\nline\ttab', 'ünïcödé 日本語 🙂', '\u0000 control', '"content": "nested"', ''];
    for (const content of values) {
      const json = JSON.stringify({ id: 'x', choices: [{ index: 0, delta: { content }, logprobs: null }] });
      expect(jsonStringField(json, 'content')).toBe(content);
    }
    // Spacing around the colon, as a pretty-printing upstream sends it.
    expect(jsonStringField('{ "delta" :\n  "spaced" }', 'delta')).toBe('spaced');
  });

  it('skips members that are no strings, and keys that only end in the name', () => {
    expect(jsonStringField('{"logprobs":{"content":[{"token":"a"}]},"delta":{"content":"b"}}', 'content')).toBe('b');
    expect(jsonStringField('{"text_content":"no","content":null}', 'content')).toBeNull();
    expect(jsonStringField('{"message":"the word \\"content\\": is text here"}', 'content')).toBeNull();
    expect(jsonStringField('{"delta":{"content":"unterminated', 'content')).toBeNull();
  });
});
