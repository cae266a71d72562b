/**
 * PriceBook's cache edges (test/MUTATION.md, "Accounting"): a new book reads the store's overrides
 * on its first use, and a table exactly `ttlMs` old is read again.
 */
import { describe, expect, it } from 'vitest';
import type { ModelPrice, Store } from '../../src/contract.js';
import { PriceBook } from '../../src/metering/price-book.js';

/** A store that answers only priceOverrides, from `overrides` as it is at the call. */
function storeWith(overrides: Record<string, ModelPrice>): { store: Store; reads: () => number } {
  let reads = 0;
  const store = {
    priceOverrides: async () => {
      reads++;
      return { ...overrides };
    },
  } as unknown as Store;
  return { store, reads: () => reads };
}

const PRICE: ModelPrice = { input: 1, cachedInput: 0.5, output: 2 };

describe('PriceBook mutants', () => {
  it("applies the store's overrides on the first use", async () => {
    const { store, reads } = storeWith({ 'house-model': PRICE });
    const book = new PriceBook(store, () => 0);
    expect((await book.current()).nameFor('house-model')).toBe('house-model');
    expect(reads()).toBe(1);
  });

  it('reads the overrides again once the table is exactly ttlMs old, not before', async () => {
    const overrides: Record<string, ModelPrice> = {};
    const { store, reads } = storeWith(overrides);
    let now = 1_000;
    const book = new PriceBook(store, () => now, 2_000);
    expect((await book.current()).nameFor('late-model')).toBeNull();
    overrides['late-model'] = PRICE;
    now = 2_999;
    expect((await book.current()).nameFor('late-model')).toBeNull();
    now = 3_000;
    expect((await book.current()).nameFor('late-model')).toBe('late-model');
    expect(reads()).toBe(2);
  });
});
