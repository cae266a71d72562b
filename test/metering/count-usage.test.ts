/**
 * The after-call count (src/metering/estimate.ts `countUsage`, the real tokenizer in its worker
 * thread, o200k_base) when the upstream reported no usage: the prompt's texts are counted as one
 * text, joined by newlines; each image part adds 1,000 tokens; a body that is no object (none at
 * all, a text, an array) has no prompt, and only the delivered completion is counted.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { countUsage } from '../../src/metering/estimate.js';
import { stopTokenizer } from '../../src/metering/tokenizer.js';

const tokens = (text: string) => encode(text, { allowedSpecial: 'all' }).length;
/** What the chat format adds: 4 per message, 3 to prime the reply. */
const chat = (messages: number) => messages * 4 + 3;

describe('countUsage', () => {
  afterAll(async () => {
    await stopTokenizer();
  });

  it('counts the prompt texts as one text, joined by newlines', async () => {
    // Joined without the newline, "a" and "b" would be the one token "ab".
    expect(tokens('a\nb')).not.toBe(tokens('ab'));
    const usage = await countUsage({ messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }, 'done');
    expect(usage).toEqual({ promptTokens: tokens('a\nb') + chat(2), completionTokens: tokens('done'), cachedTokens: 0 });
  });

  it('adds 1,000 tokens per image part', async () => {
    const parts = (...images: unknown[]) => ({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, ...images] }] });
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } };
    const without = (await countUsage(parts(), '')).promptTokens;
    expect(without).toBe(tokens('What is this?') + chat(1));
    expect((await countUsage(parts(image), '')).promptTokens).toBe(without + 1000);
    expect((await countUsage(parts(image, image), '')).promptTokens).toBe(without + 2000);
  });

  it('counts no prompt for a body that is no object, and still the completion', async () => {
    for (const body of [undefined, null, 'hello there', 42, [{ role: 'user', content: 'hi' }]]) {
      expect(await countUsage(body, 'a reply'), JSON.stringify(body)).toEqual({ promptTokens: 0, completionTokens: tokens('a reply'), cachedTokens: 0 });
    }
  });
});
