/**
 * The usage parser's edges that the mutation run found untested (test/MUTATION.md, "Accounting"):
 * a count of exactly 0 is in range, text that is blank or not a number is not read as one, a value
 * of another type is not a number, and a usage object naming only one of its two counts is still
 * read (both shapes).
 */
import { describe, expect, it } from 'vitest';
import { parseUsage, usageFromJson } from '../../src/metering/usage.js';

describe('parseUsage: counts', () => {
  it('takes a count of 0 as in range: nothing clamped', () => {
    expect(parseUsage({ prompt_tokens: 0, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } })).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
    });
    expect(parseUsage({ input_tokens: 0, output_tokens: 7 })).toEqual({ promptTokens: 0, completionTokens: 7, cachedTokens: 0 });
  });

  it('reads an empty or blank text as no number, not as 0 sent as text', () => {
    expect(parseUsage({ prompt_tokens: '', completion_tokens: '   ' })).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      clamped: ['prompt_tokens: not a number (string)', 'completion_tokens: not a number (string)'],
    });
  });

  it('reads a text that is no number as no number', () => {
    expect(parseUsage({ prompt_tokens: 'twelve', completion_tokens: '3' })).toEqual({
      promptTokens: 0,
      completionTokens: 3,
      cachedTokens: 0,
      clamped: ['prompt_tokens: not a number (string)', 'completion_tokens: a number sent as text'],
    });
  });

  it('reads a boolean or an object as no number (true is not 1)', () => {
    expect(parseUsage({ prompt_tokens: true, completion_tokens: { n: 4 }, prompt_tokens_details: { cached_tokens: [2] } })).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      clamped: ['prompt_tokens: not a number (boolean)', 'completion_tokens: not a number (object)', 'cached_tokens: not a number (object)'],
    });
  });
});

describe('parseUsage: one count named', () => {
  it('reads a chat usage with only prompt_tokens, or only completion_tokens', () => {
    expect(parseUsage({ prompt_tokens: 11 })).toEqual({ promptTokens: 11, completionTokens: 0, cachedTokens: 0 });
    expect(parseUsage({ completion_tokens: 12 })).toEqual({ promptTokens: 0, completionTokens: 12, cachedTokens: 0 });
  });

  it('reads a Responses usage with only input_tokens, or only output_tokens', () => {
    expect(parseUsage({ input_tokens: 13, input_tokens_details: { cached_tokens: 5 } })).toEqual({ promptTokens: 13, completionTokens: 0, cachedTokens: 5 });
    expect(parseUsage({ output_tokens: 14 })).toEqual({ promptTokens: 0, completionTokens: 14, cachedTokens: 0 });
  });

  it('finds a one-count usage inside a Responses body too', () => {
    expect(usageFromJson({ response: { usage: { output_tokens: 9 } } })).toEqual({ promptTokens: 0, completionTokens: 9, cachedTokens: 0 });
  });

  it('is no usage when neither shape is named', () => {
    expect(parseUsage({ total_tokens: 20 })).toBeNull();
  });
});
