/**
 * The JSON tap on its own (src/metering/json-tap.ts), as the relay uses it for JSON answers too
 * large to read whole: every chunk passes unchanged, and once the body is over the tap reads its
 * usage and its assistant text from the copy it kept, also when the JSON was split mid-token; a
 * body that is not JSON, has no choices or is over the copy's 8 MiB cap yields no usage and no
 * text (the call is then billed by other means), never an error.
 */
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { JsonTap } from '../../src/metering/json-tap.js';

/** Runs `chunks` through a new tap; returns the tap and the bytes that came out. */
async function tapped(chunks: Buffer[]): Promise<{ tap: JsonTap; out: Buffer }> {
  const tap = new JsonTap();
  const out: Buffer[] = [];
  tap.on('data', (c: Buffer) => out.push(c));
  await pipeline(Readable.from(chunks), tap);
  return { tap, out: Buffer.concat(out) };
}

/** `text` cut into pieces of `size` bytes. */
const pieces = (text: string, size: number) => {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
};

describe('JsonTap', () => {
  const body = JSON.stringify({
    choices: [{ message: { content: 'Hello, ' } }, { message: { content: 'wörld' } }, { message: { content: null } }],
    usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
  });

  it('passes the body through unchanged and reads usage and text, however it was split', async () => {
    for (const size of [1, 3, 7, 64, body.length]) {
      const { tap, out } = await tapped(pieces(body, size));
      expect(out.toString()).toBe(body);
      expect(tap.usage()).toEqual({ promptTokens: 12, completionTokens: 7, cachedTokens: 0 });
      expect(tap.completionText()).toBe('Hello, wörld');
    }
  });

  it('reads the text of a body that reports no usage', async () => {
    const { tap } = await tapped(pieces(JSON.stringify({ choices: [{ message: { content: 'just text' } }] }), 5));
    expect(tap.usage()).toBeNull();
    expect(tap.completionText()).toBe('just text');
  });

  it('gives no usage and no text for a body that is not JSON, has no choices, or is empty', async () => {
    for (const text of ['{"usage": {"prompt_tokens": 1', 'not json', '{"object":"list","data":[]}', '[]']) {
      const { tap, out } = await tapped([Buffer.from(text)]);
      expect(out.toString()).toBe(text);
      expect(tap.usage(), text).toBeNull();
      expect(tap.completionText(), text).toBe('');
    }
    const empty = await tapped([]);
    expect(empty.tap.usage()).toBeNull();
    expect(empty.tap.completionText()).toBe('');
  });

  it('keeps no copy past 8 MiB: the whole body still passes, with no usage read', async () => {
    const filler = 'x'.repeat(9 * 1024 * 1024);
    const big = JSON.stringify({ filler, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    const { tap, out } = await tapped(pieces(big, 1024 * 1024));
    expect(out.length).toBe(Buffer.byteLength(big));
    expect(tap.usage()).toBeNull();
    // Just under the cap, the usage is read.
    const under = JSON.stringify({ filler: 'x'.repeat(8 * 1024 * 1024 - 200), usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });
    expect(Buffer.byteLength(under)).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect((await tapped(pieces(under, 1024 * 1024))).tap.usage()).toEqual({ promptTokens: 3, completionTokens: 4, cachedTokens: 0 });
  });
});
