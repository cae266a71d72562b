/**
 * The tokenizer thread (src/metering/tokenizer.ts) as callers see it: counts as gpt-tokenizer
 * counts them; an error answer of the thread rejects that count with a message naming the
 * tokenizer, and the thread goes on serving; a stop while a count is in flight rejects it, and
 * the next count starts the thread again; a count right after a stop that was not awaited goes
 * to a new thread and is answered (the old thread's end fails only its own counts).
 */
import { describe, expect, it } from 'vitest';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokensOf, stopTokenizer } from '../../src/metering/tokenizer.js';

const tokens = (text: string) => encode(text, { allowedSpecial: 'all' }).length;

describe('tokenizer worker', () => {
  it('answers empty texts with zeros', async () => {
    expect(await countTokensOf(['', ''])).toEqual([0, 0]);
    expect(await countTokensOf([])).toEqual([]);
  });

  it("rejects a count the thread cannot do with the thread's message, and keeps serving", async () => {
    // A caller outside TypeScript's reach (untyped JSON) may hand over something that is no string.
    const notText = { length: 1 } as unknown as string;
    const failed = await countTokensOf([notText]).then(
      (counts) => ({ counts }),
      (err: Error) => ({ err }),
    );
    expect(failed).toHaveProperty('err');
    expect((failed as { err: Error }).err.message).toMatch(/^tokenizer: \S/);
    expect(await countTokensOf(['hello world', ''])).toEqual([tokens('hello world'), 0]);
  });

  it('rejects a count in flight when the thread is stopped, and starts again on the next count', async () => {
    await stopTokenizer();
    const inFlight = countTokensOf(['counted by a thread that is stopped before it answers']);
    await stopTokenizer();
    await expect(inFlight).rejects.toThrow('tokenizer worker stopped');
    expect(await countTokensOf(['after the stop'])).toEqual([tokens('after the stop')]);
  }, 15_000);

  it('answers a count made right after a stop that was not awaited (the old thread ends alone)', async () => {
    expect(await countTokensOf(['warm'])).toEqual([tokens('warm')]);
    void stopTokenizer();
    // Were the old thread's end to fail every pending count, this one would be billed as nothing.
    expect(await countTokensOf(['right after'])).toEqual([tokens('right after')]);
    // The new thread answers in order: once this count is back, the earlier answer has arrived too.
    expect(await countTokensOf(['next one'])).toEqual([tokens('next one')]);
  }, 15_000);
});
