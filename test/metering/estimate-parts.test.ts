/**
 * What the pre-call estimate (src/metering/estimate.ts `estimateUsage`) takes from a body's
 * structure, measured as differences so the test does not restate the per-text formula: each image
 * part (`image_url` or `input_image`, or any part holding an `image_url`) adds exactly 1,000 prompt
 * tokens and its other fields are not read as text; text nested deeper than 8 levels below a body
 * field is not read (a bound on the walk, through arrays or objects); each body field that holds
 * prompt text is read, the tools and functions as their JSON text; the completion budget is the
 * request's own cap (a finite number of 0 or more; the default for anything else, and nothing for
 * a body that is no object), times n when n is a whole number above 1.
 */
import { describe, expect, it } from 'vitest';
import { estimateTextTokens, estimateUsage } from '../../src/metering/estimate.js';

const prompt = (body: unknown) => estimateUsage(body, 100).promptTokens;

/** `value` wrapped in `levels` arrays. */
const nested = (levels: number, value: unknown): unknown => (levels === 0 ? value : [nested(levels - 1, value)]);

describe('estimateUsage', () => {
  const text = { role: 'user', content: [{ type: 'text', text: 'Describe this picture in detail.' }] };

  it('adds 1,000 tokens per image part, whatever the part holds', () => {
    const base = prompt({ messages: [text] });
    const withParts = (...parts: unknown[]) => prompt({ messages: [{ ...text, content: [...text.content, ...parts] }] });
    // 8,000 letters estimate at 2,000 tokens (4,000 would be 1,000, the same as an image).
    const long = 'x'.repeat(4000);
    expect(withParts({ type: 'image_url', image_url: { url: `data:image/png;base64,${long}` } })).toBe(base + 1000);
    expect(withParts({ type: 'input_image', text: long + long })).toBe(base + 1000);
    expect(withParts({ image_url: { url: 'https://example.test/a.png' }, text: long + long })).toBe(base + 1000);
    expect(withParts({ type: 'image_url', image_url: 'u' }, { type: 'input_image', image_url: 'v' })).toBe(base + 2000);
    // Its type alone makes a part an image, without an image_url field.
    expect(withParts({ type: 'image_url', text: long + long })).toBe(base + 1000);
    // A part that is no image is read as text.
    expect(withParts({ type: 'text', text: long + long })).toBeGreaterThan(base + 1000);
  });

  it('reads no text from numbers and booleans where text may stand', () => {
    const base = prompt({ messages: [{ role: 'user', content: '' }] });
    expect(prompt({ messages: [{ role: 'user', content: 42 }] })).toBe(base);
    expect(prompt({ messages: [{ role: 'user', content: [true, 7, null] }] })).toBe(base);
  });

  it('reads text up to 8 levels deep below a body field, not deeper', () => {
    const empty = prompt({ input: nested(8, []) });
    const word = 'supercalifragilistic';
    expect(prompt({ input: nested(8, word) })).toBeGreaterThan(empty);
    expect(prompt({ input: nested(9, word) })).toBe(prompt({ input: nested(9, []) }));
    expect(prompt({ input: nested(30, word) })).toBe(prompt({ input: nested(30, []) }));
  });

  it('reads text nested through objects up to 8 levels deep too, not deeper', () => {
    /** `value` under `levels` objects, each holding the next as its content. */
    const inParts = (levels: number, value: unknown): unknown => (levels === 0 ? value : { content: inParts(levels - 1, value) });
    const word = 'supercalifragilistic';
    expect(prompt({ input: inParts(8, word) })).toBe(estimateTextTokens(word));
    expect(prompt({ input: inParts(9, word) })).toBe(0);
    expect(prompt({ input: inParts(30, word) })).toBe(0);
  });

  it('reads each body field that holds prompt text, and the tools and functions as their JSON', () => {
    const words = 'Answer in French, briefly';
    for (const field of ['messages', 'input', 'prompt', 'instructions', 'system']) {
      expect(prompt({ [field]: words }), field).toBe(estimateTextTokens(words));
    }
    expect(prompt({ model: words, user: words })).toBe(0); // not prompt text
    const base = prompt({ messages: [text] });
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }];
    expect(prompt({ messages: [text], tools })).toBe(base + estimateTextTokens(JSON.stringify(tools)));
    expect(prompt({ messages: [text], functions: tools })).toBe(base + estimateTextTokens(JSON.stringify(tools)));
  });

  it('takes the completion budget from the request, or the default', () => {
    expect(estimateUsage({ messages: [text], max_tokens: 7 }, 100).completionTokens).toBe(7);
    expect(estimateUsage({ messages: [text] }, 100).completionTokens).toBe(100);
    expect(estimateUsage(null, 100)).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
    expect(estimateUsage([text], 100)).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
    // A body that is no object has no budget either.
    expect(estimateUsage('hello there', 100)).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
    expect(estimateUsage(42, 100)).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
  });

  it('takes a budget that is a finite number of 0 or more; anything else is no budget (the default)', () => {
    const budget = (max_tokens: unknown) => estimateUsage({ messages: [text], max_tokens }, 100).completionTokens;
    expect(budget(0)).toBe(0);
    expect(budget(7)).toBe(7);
    for (const v of ['5', true, null, Number.POSITIVE_INFINITY, Number.NaN, -1]) expect(budget(v), String(v)).toBe(100);
  });

  it('multiplies the budget only by a whole n above 1: n of 1, 0, below 0, a fraction or a text is one choice', () => {
    const budget = (n: unknown) => estimateUsage({ messages: [text], max_tokens: 7, n }, 100).completionTokens;
    expect(budget(3)).toBe(21);
    for (const n of [1, 0, -2, 2.5, '3', null]) expect(budget(n), `n = ${JSON.stringify(n)}`).toBe(7);
  });
});
