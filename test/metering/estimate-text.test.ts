/**
 * The pre-call text estimate (src/metering/estimate.ts `estimateTextTokens`) on strings worked
 * out by hand from its documented rule: non-ASCII runs at one token per two UTF-8 bytes, rounded
 * up (2 bytes below U+0800, 3 above, 4 for a surrogate pair, counted at its high half); a letter
 * run takes one leading space or symbol, but not a newline or a digit; the last character has no
 * next one to join.
 */
import { describe, expect, it } from 'vitest';
import { estimateTextTokens } from '../../src/metering/estimate.js';

describe('estimateTextTokens', () => {
  it.each([
    ['\u007f', 1], // the last ASCII code is a symbol
    ['\u0080', 1], // 2 bytes
    ['é', 1],
    ['éé', 2], // 4 bytes
    ['ééé', 3], // 6 bytes
    ['\u07ff', 1], // still 2 bytes
    ['\u0800', 2], // 3 bytes
    ['\u0800\u07ff', 3], // 3 + 2 bytes
    ['中文', 3], // 6 bytes
    ['\ud7ff', 2], // 3 bytes, just below the surrogates
    ['\ue000', 2], // 3 bytes, just above them
    ['😀', 2], // a surrogate pair: 4 bytes
    ['😀😀', 4],
    ['\udbff\udfff', 2], // the last pair
    ['\ud800\udc00\ud800\udc00', 4], // the first pair, twice: 8 bytes
    ['aé', 2], // a letter run ends at non-ASCII text
    [' é', 2],
    // Two of a kind at each edge, where one alone rounds 3 and 4 bytes (or 2 and 3) alike.
    ['\u07ff\u07ff', 2], // 2 + 2 bytes
    ['\u0800\u0800', 3], // 3 + 3
    ['\ud7ff\ud7ff', 3],
    ['\ue000\ue000', 3], // above the surrogates: 3 each, not 4
    ['\uffff\uffff', 3],
    ['\udbff\udfff\udbff\udfff', 4], // the last pair, twice: 8 bytes
  ])('%j → %d (non-ASCII)', (text, tokens) => {
    expect(estimateTextTokens(text)).toBe(tokens);
  });

  it.each([
    ['abcd', 1],
    ['abcde', 2],
    [' abc', 1], // the space joins the run: 4 letters
    ['-abc', 1], // so does a symbol
    ['\nabc', 2], // a newline does not
    ['\rabc', 2],
    ['1abc', 2], // nor a digit
    ['abc!', 2], // a symbol at the end stands alone
    ['!', 1],
    ['a!b', 2], // "a", then "!b"
  ])('%j → %d (ASCII)', (text, tokens) => {
    expect(estimateTextTokens(text)).toBe(tokens);
  });
});
