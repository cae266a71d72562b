/**
 * The metering building blocks: reading `usage` in every shape (usage.ts), the cheap pre-call
 * estimate that reservations use and the tokenizer count used when no usage comes back
 * (estimate.ts), and the price table (prices.ts): longest-prefix matching of dated snapshots,
 * cached-input pricing, overrides, the fallback for unknown models, exact micro-dollar rounding.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { parseUsage, totalTokens, usageFromJson } from '../../src/metering/usage.js';
import { completionBudget, countTokens, countUsage, estimateTextTokens, estimateUsage } from '../../src/metering/estimate.js';
import { PriceTable, type ModelPrice } from '../../src/metering/prices.js';

describe('usage.ts', () => {
  it('reads chat / embeddings usage, with cached tokens', () => {
    expect(parseUsage({ prompt_tokens: 12, completion_tokens: 30, total_tokens: 42, prompt_tokens_details: { cached_tokens: 8 } })).toEqual({
      promptTokens: 12,
      completionTokens: 30,
      cachedTokens: 8,
    });
    expect(parseUsage({ prompt_tokens: 3, total_tokens: 3 })).toEqual({ promptTokens: 3, completionTokens: 0, cachedTokens: 0 });
  });

  it('reads Responses API usage', () => {
    expect(parseUsage({ input_tokens: 100, output_tokens: 20, input_tokens_details: { cached_tokens: 64 }, total_tokens: 120 })).toEqual({
      promptTokens: 100,
      completionTokens: 20,
      cachedTokens: 64,
    });
  });

  it('is null for what is not a usage object; counts out of range are clamped to 0..2^31-1 and named', () => {
    for (const value of [null, undefined, 42, 'usage', {}, { total_tokens: 5 }]) expect(parseUsage(value)).toBeNull();
    expect(parseUsage({ prompt_tokens: -5, completion_tokens: 'many', prompt_tokens_details: null })).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      clamped: ['prompt_tokens: negative', 'completion_tokens: not a number (string)'],
    });
    expect(parseUsage({ prompt_tokens: Infinity, completion_tokens: 2.6 })).toEqual({
      promptTokens: 2_147_483_647,
      completionTokens: 3,
      cachedTokens: 0,
      clamped: ['prompt_tokens: too large', 'completion_tokens: not a whole number'],
    });
    expect(parseUsage({ input_tokens: '12', output_tokens: 2 ** 53 + 2, input_tokens_details: { cached_tokens: NaN } })).toEqual({
      promptTokens: 12,
      completionTokens: 2_147_483_647,
      cachedTokens: 0,
      clamped: ['input_tokens: a number sent as text', 'output_tokens: too large', 'cached_tokens: not a number'],
    });
    // In range: nothing noted (null and missing counts are 0).
    expect(parseUsage({ prompt_tokens: 2_147_483_647, completion_tokens: null })).toEqual({ promptTokens: 2_147_483_647, completionTokens: 0, cachedTokens: 0 });
  });

  it('usageFromJson: chat body, Responses body, a Responses event wrapping a response; null otherwise', () => {
    expect(usageFromJson({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } })).toEqual({ promptTokens: 1, completionTokens: 2, cachedTokens: 0 });
    expect(usageFromJson({ object: 'response', usage: { input_tokens: 5, output_tokens: 6 } })).toEqual({ promptTokens: 5, completionTokens: 6, cachedTokens: 0 });
    expect(usageFromJson({ type: 'response.completed', response: { usage: { input_tokens: 7, output_tokens: 8 } } })).toEqual({
      promptTokens: 7,
      completionTokens: 8,
      cachedTokens: 0,
    });
    for (const body of [null, [], 'x', { choices: [] }, { usage: null }]) expect(usageFromJson(body)).toBeNull();
  });

  it('totalTokens is prompt + completion (cached tokens are part of the prompt)', () => {
    expect(totalTokens({ promptTokens: 10, completionTokens: 5, cachedTokens: 8 })).toBe(15);
  });
});

const ENGLISH =
  'The quick brown fox jumps over the lazy dog. In the beginning of the twentieth century, most ' +
  'households did not have electricity, and the idea of a machine that could answer questions in ' +
  'plain language would have sounded like science fiction. Today, teams share access to large ' +
  "language models through gateways that count every token, so that nobody's experiment eats the " +
  'monthly budget before the end of the first week. ';
const CHINESE = '我们的团队共享一个接口密钥。每个人都有自己的代理密钥和限额，管理员可以随时查看用量并撤销访问权限。今天天气很好，我们去公园散步吧。';
const JAPANESE = '東京は日本の首都です。私たちはゲートウェイを使って、APIキーをチームで安全に共有しています。利用状況は毎日確認されます。';
const KOREAN = '안녕하세요. 이 게이트웨이는 팀원들이 하나의 API 키를 안전하게 공유할 수 있도록 도와줍니다.';
const PYTHON = `def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    result = [0, 1]
    while len(result) < n:
        result.append(result[-1] + result[-2])
    return result[:n]


if __name__ == "__main__":
    for i, value in enumerate(fibonacci(20)):
        print(f"{i:>3}: {value}")
`;
const TYPESCRIPT = readFileSync(new URL('../../src/limits/sqlite.ts', import.meta.url), 'utf8');
/** Dense short tokens: one token per 1-2 bytes, far below 3 bytes a token. */
const DENSE_CODE = 'function f(x) { return x * 2; }\n'.repeat(20);
const DIGITS = Array.from({ length: 200 }, (_, i) => String((i * 7919) % 10)).join(' ');
const CSV = Array.from({ length: 40 }, (_, i) => `${i},${(i * 37) % 100},${(i * 53) % 1000},x`).join('\n');
const JSON_DATA = JSON.stringify(Array.from({ length: 30 }, (_, i) => ({ id: i, ok: i % 2 === 0, v: [i, i + 1, -i] })));

const encoders = { o200k_base: { encode: encodeO200k }, cl100k_base: { encode: encodeCl100k } };

/** The real prompt tokens of a one-message chat, as the upstream counts them (both tokenizers). */
function realPromptTokens(text: string): number {
  // OpenAI's chat format adds 3 tokens per message and its role (1), plus 3 to prime the reply.
  return Math.max(...Object.values(encoders).map((e) => e.encode(text).length)) + 3 + 1 + 3;
}

describe('estimate.ts: the pre-call estimate is an upper bound of the prompt', () => {
  const samples: Record<string, string> = {
    english: ENGLISH,
    'english, long': ENGLISH.repeat(40),
    chinese: CHINESE,
    japanese: JAPANESE,
    korean: KOREAN,
    python: PYTHON,
    typescript: TYPESCRIPT,
    'dense code': DENSE_CODE,
    digits: DIGITS,
    csv: CSV,
    json: JSON_DATA,
  };
  for (const [name, text] of Object.entries(samples)) {
    it(`${name}: estimate ≥ real token count (o200k_base and cl100k_base)`, () => {
      const estimate = estimateUsage({ model: 'gpt-4o', messages: [{ role: 'user', content: text }] }, 0);
      const real = realPromptTokens(text);
      expect(estimate.promptTokens, `${name}: estimate ${estimate.promptTokens}, real ${real}`).toBeGreaterThanOrEqual(real);
      expect(estimate.completionTokens).toBe(0);
    });
  }

  it('stays within a small factor of the real count for ordinary text (not a wild over-reservation)', () => {
    for (const text of [ENGLISH.repeat(10), TYPESCRIPT, CHINESE.repeat(5)]) {
      const estimate = estimateUsage({ messages: [{ role: 'user', content: text }] }, 0).promptTokens;
      expect(estimate / realPromptTokens(text)).toBeLessThan(2);
    }
  });

  it('counts every place a prompt can be: messages, content parts, images, tool calls, tools, input, prompt, instructions', () => {
    const count = (text: string) => Math.max(...Object.values(encoders).map((e) => e.encode(text).length));
    const tools = [{ type: 'function', function: { name: 'lookup', description: 'Looks a word up', parameters: { type: 'object', properties: { word: { type: 'string' } } } } }];
    const args = JSON.stringify({ word: 'serendipity', language: 'en', limit: 10 });
    const chat = estimateUsage(
      {
        messages: [
          { role: 'system', content: ENGLISH },
          { role: 'user', content: [{ type: 'text', text: PYTHON }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: args } }] },
          { role: 'tool', tool_call_id: 'call_1', content: CHINESE },
        ],
        tools,
      },
      0,
    );
    const real = count(ENGLISH) + count(PYTHON) + 1_000 + count('lookup') + count(args) + count(CHINESE) + count(JSON.stringify(tools)) + 4 * 4 + 3;
    expect(chat.promptTokens).toBeGreaterThanOrEqual(real);
    expect(estimateUsage({ input: ENGLISH, instructions: PYTHON }, 0).promptTokens).toBeGreaterThanOrEqual(count(ENGLISH) + count(PYTHON));
    expect(estimateUsage({ input: [{ role: 'user', content: [{ type: 'input_text', text: JAPANESE }] }] }, 0).promptTokens).toBeGreaterThanOrEqual(count(JAPANESE) + 7);
    expect(estimateUsage({ prompt: [ENGLISH, CSV] }, 0).promptTokens).toBeGreaterThanOrEqual(count(ENGLISH) + count(CSV));
    expect(estimateUsage({ model: 'text-embedding-3-small', input: [DIGITS, KOREAN] }, 0).promptTokens).toBeGreaterThanOrEqual(count(DIGITS) + count(KOREAN));
  });

  it('follows its rule exactly on fixed strings, worked out by hand (the gateway tests rely on 11 for "hi there")', () => {
    // A letter run with its one leading space or symbol: one token per 4 letters, at least one.
    expect(estimateTextTokens('hi there')).toBe(3); // "hi" 1 + " there" (6) 2
    // "The" 1, " quick" 2, " brown" 2, " fox" 1, " jumps" 2, " over" 2, " the" 1, " lazy" 2, " dog" 1, "." 1
    expect(estimateTextTokens('The quick brown fox jumps over the lazy dog.')).toBe(15);
    // Digits in groups of up to three; a whitespace run is one; punctuation one per character.
    expect(estimateTextTokens('12345')).toBe(2);
    expect(estimateTextTokens('1234567')).toBe(3);
    expect(estimateTextTokens('  \n\t ')).toBe(1);
    expect(estimateTextTokens('a, b!')).toBe(4); // "a" 1, "," 1, " b" 1, "!" 1
    // Non-ASCII text at one token per 2 UTF-8 bytes, rounded up.
    expect(estimateTextTokens('我们的团队')).toBe(8); // 5 × 3 bytes = 15 bytes
    expect(estimateTextTokens('héllo')).toBe(3); // "h" 1, "é" (2 bytes) 1, "llo" 1
    expect(estimateTextTokens('😀')).toBe(2); // 4 bytes
    expect(estimateTextTokens('')).toBe(0);
    // A chat adds 5 per message and 3 for the reply; an image counts 1000.
    expect(estimateUsage({ messages: [{ role: 'user', content: 'hi there' }] }, 0).promptTokens).toBe(3 + 5 + 3);
    expect(
      estimateUsage({ messages: [{ role: 'system', content: '12345' }, { role: 'user', content: [{ type: 'text', text: 'hi there' }, { type: 'image_url', image_url: { url: 'data:,' } }] }] }, 0)
        .promptTokens,
    ).toBe(2 + 3 + 1_000 + 2 * 5 + 3);
    expect(estimateUsage({ input: '12345' }, 0).promptTokens).toBe(2); // no messages: nothing added
    // The real tokenizers agree these are upper bounds ("hi there" is 2 tokens in both).
    for (const e of Object.values(encoders)) expect(e.encode('hi there')).toHaveLength(2);
  });

  it('the completion budget: max_completion_tokens, max_tokens or max_output_tokens, else the default; times n', () => {
    expect(completionBudget({ max_tokens: 100 }, 1024)).toBe(100);
    expect(completionBudget({ max_completion_tokens: 50, max_tokens: 100 }, 1024)).toBe(50);
    expect(completionBudget({ max_output_tokens: 70 }, 1024)).toBe(70);
    expect(completionBudget({}, 1024)).toBe(1024);
    expect(completionBudget({ max_tokens: 'lots' }, 1024)).toBe(1024);
    expect(completionBudget({ max_tokens: -1 }, 1024)).toBe(1024);
    expect(completionBudget({ max_tokens: 100, n: 3 }, 1024)).toBe(300);
    expect(completionBudget({ n: 2 }, 10)).toBe(20);
    expect(estimateUsage({ messages: [], max_tokens: 42 }, 7)).toEqual({ promptTokens: 0, completionTokens: 42, cachedTokens: 0 });
    expect(estimateUsage(null, 7)).toEqual({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
  });

  it('countTokens / countUsage count with the real tokenizer (o200k_base)', async () => {
    expect(await countTokens('')).toBe(0);
    expect(await countTokens(ENGLISH)).toBe(encoders.o200k_base.encode(ENGLISH).length);
    expect(await countTokens(CHINESE)).toBe(encoders.o200k_base.encode(CHINESE).length);
    const usage = await countUsage({ messages: [{ role: 'user', content: ENGLISH }] }, 'Hello there, friend.');
    expect(usage).toEqual({
      promptTokens: encoders.o200k_base.encode(ENGLISH).length + 4 + 3,
      completionTokens: encoders.o200k_base.encode('Hello there, friend.').length,
      cachedTokens: 0,
    });
    expect(await countUsage(null, 'abc')).toMatchObject({ promptTokens: 0 });
  });
});

describe('prices.ts', () => {
  const table = new PriceTable();
  const usage = (promptTokens: number, completionTokens: number, cachedTokens = 0) => ({ promptTokens, completionTokens, cachedTokens });

  it('prices dated snapshots by their family, the longest matching name winning', () => {
    // OpenAI's published prices, USD per 1M tokens (input, cached input, output).
    const p = (input: number, cachedInput: number, output: number): ModelPrice => ({ input, cachedInput, output });
    const cases: [string, ModelPrice][] = [
      ['gpt-4o-mini', p(0.15, 0.075, 0.6)],
      ['gpt-4o-mini-2024-07-18', p(0.15, 0.075, 0.6)],
      ['gpt-4o', p(2.5, 1.25, 10)],
      ['gpt-4o-2024-08-06', p(2.5, 1.25, 10)],
      ['gpt-4-0613', p(30, 30, 60)],
      ['gpt-4-turbo-2024-04-09', p(10, 10, 30)],
      ['gpt-4.1-nano-2025-04-14', p(0.1, 0.025, 0.4)],
      ['gpt-4.1-2025-04-14', p(2, 0.5, 8)],
      ['gpt-3.5-turbo-0125', p(0.5, 0.5, 1.5)],
      ['o3-mini-2025-01-31', p(1.1, 0.55, 4.4)],
      ['o1-2024-12-17', p(15, 7.5, 60)],
      ['gpt-5-mini-2025-08-07', p(0.25, 0.025, 2)],
      ['text-embedding-3-small', p(0.02, 0.02, 0)],
    ];
    for (const [model, price] of cases) expect(table.priceOf(model), model).toEqual({ price, known: true });

    // Which family wins, with every family priced differently (some share a published price).
    const families = ['gpt-4o-mini', 'gpt-4o', 'gpt-4-turbo', 'gpt-4', 'gpt-4.1-nano', 'gpt-4.1', 'o3-mini', 'o3', 'o1-mini', 'o1'];
    const distinct = new PriceTable(Object.fromEntries(families.map((name, i) => [name, p(i + 1, i + 1, i + 1)])), p(0, 0, 0));
    const family: [string, string][] = [
      ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
      ['gpt-4o-2024-08-06', 'gpt-4o'],
      ['gpt-4-turbo-2024-04-09', 'gpt-4-turbo'],
      ['gpt-4-0613', 'gpt-4'],
      ['gpt-4.1-nano-2025-04-14', 'gpt-4.1-nano'],
      ['gpt-4.1-2025-04-14', 'gpt-4.1'],
      ['o3-mini-2025-01-31', 'o3-mini'],
      ['o3-2025-04-16', 'o3'],
      ['o1-mini-2024-09-12', 'o1-mini'],
      ['o1-2024-12-17', 'o1'],
    ];
    for (const [model, name] of family) expect(distinct.priceOf(model).price.input, model).toBe(families.indexOf(name) + 1);
  });

  it('does not match on a bare prefix without the dash (gpt-4o is not gpt-4, gpt-4ox is unknown)', () => {
    expect(table.priceOf('gpt-4o').price).toEqual({ input: 2.5, cachedInput: 1.25, output: 10 });
    expect(table.priceOf('gpt-4ox')).toMatchObject({ known: false });
    expect(table.priceOf('o10')).toMatchObject({ known: false });
  });

  it('prices unknown models (and no model) like gpt-4o ($2.50 / $10 per 1M), so spend is never free', () => {
    for (const model of ['llama-3-70b', 'my-fine-tune', 'gpt-4ox', null]) {
      expect(table.priceOf(model)).toEqual({ price: { input: 2.5, cachedInput: 1.25, output: 10 }, known: false });
      // 1000 × 2.5 + 1000 × 10 micro-dollars.
      expect(table.costMicroUsd(model, usage(1_000, 1_000))).toBe(2_500 + 10_000);
    }
  });

  it('costs in micro-dollars: input, cached input and output prices', () => {
    // gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per 1M tokens.
    expect(table.costMicroUsd('gpt-4o-mini', usage(1_000_000, 1_000_000))).toBe(750_000);
    expect(table.costMicroUsd('gpt-4o-mini', usage(1_000, 100, 400))).toBe(180); // 600 × 0.15 + 400 × 0.075 + 100 × 0.6 = 90 + 30 + 60
    // Cached tokens are part of the prompt: more cached than prompt counts the whole prompt as cached.
    expect(table.costMicroUsd('gpt-4o-mini', usage(100, 0, 500))).toBe(8); // 100 × 0.075 = 7.5, rounded up
    // Embeddings: input only.
    expect(table.costMicroUsd('text-embedding-3-small', usage(1_000_000, 0))).toBe(20_000);
    // A fraction of a micro-dollar is rounded up, never down to free.
    expect(table.costMicroUsd('gpt-4o-mini', usage(1, 0))).toBe(1);
    expect(table.costMicroUsd('gpt-4o-mini', usage(0, 0))).toBe(0);
  });

  it('a whole number of micro-dollars is not rounded up by floating-point noise', () => {
    // 205 completion tokens of gpt-4o-mini cost exactly 123 micro-dollars (205 × 0.6).
    expect(table.costMicroUsd('gpt-4o-mini', usage(0, 205))).toBe(123);
    // In integers: $0.15 and $0.60 per 1M are 15 and 60 hundredths of a micro-dollar a token.
    for (let prompt = 0; prompt <= 400; prompt += 7) {
      for (let completion = 0; completion <= 400; completion += 5) {
        const hundredths = prompt * 15 + completion * 60;
        const expected = (hundredths - (hundredths % 100)) / 100 + (hundredths % 100 === 0 ? 0 : 1);
        expect(table.costMicroUsd('gpt-4o-mini', usage(prompt, completion)), `${prompt}+${completion}`).toBe(expected);
      }
    }
  });

  it('overrides replace a model’s price (and its snapshots’), or add new models', () => {
    const custom = table.with({ 'gpt-4o-mini': { input: 1, cachedInput: 0.5, output: 2 }, 'my-model': { input: 3, cachedInput: 3, output: 4 } });
    expect(custom.costMicroUsd('gpt-4o-mini-2024-07-18', usage(1_000, 1_000))).toBe(3_000);
    expect(custom.costMicroUsd('my-model', usage(1_000, 1_000))).toBe(7_000);
    expect(custom.priceOf('my-model-v2').known).toBe(true);
    // The original table is unchanged.
    expect(table.costMicroUsd('gpt-4o-mini', usage(1_000, 1_000))).toBe(750);
  });
});
