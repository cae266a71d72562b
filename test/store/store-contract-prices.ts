/**
 * Store contract, price overrides and the store's lifecycle: set, replace, remove, the order
 * models were first priced in, exact fractional prices; ping; close.
 */
import { expect } from 'vitest';
import type { StoreCase } from './store-contract-fixtures.js';

export const priceAndLifecycleCases: StoreCase[] = [
  {
    name: 'price overrides: none at first; set, replace and remove; removing an unknown model is a no-op',
    async run(store) {
      expect(await store.priceOverrides()).toStrictEqual({});
      await store.setPriceOverride('gpt-4o', { input: 2.5, cachedInput: 1.25, output: 10 });
      await store.setPriceOverride('o3', { input: 2, cachedInput: 0.5, output: 8 });
      expect(await store.priceOverrides()).toStrictEqual({
        'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
        o3: { input: 2, cachedInput: 0.5, output: 8 },
      });
      await store.setPriceOverride('gpt-4o', { input: 3, cachedInput: 0, output: 12 });
      await store.setPriceOverride('o3', null);
      await store.setPriceOverride('never-priced', null);
      expect(await store.priceOverrides()).toStrictEqual({ 'gpt-4o': { input: 3, cachedInput: 0, output: 12 } });
    },
  },
  {
    name: 'prices keep every digit: fractions that binary cannot hold exactly, tiny and large values',
    async run(store) {
      const prices = {
        'model-a': { input: 0.075, cachedInput: 0.0375, output: 1 / 3 },
        'model-b': { input: 0.1 + 0.2, cachedInput: 1e-9, output: 123_456.789 },
      };
      for (const [model, price] of Object.entries(prices)) await store.setPriceOverride(model, price);
      expect(await store.priceOverrides()).toStrictEqual(prices);
    },
  },
  {
    name: 'price overrides come in the order models were first priced; replacing keeps the place',
    async run(store) {
      const price = (n: number) => ({ input: n, cachedInput: n, output: n });
      for (const [i, model] of ['zeta', 'alpha', 'mu'].entries()) await store.setPriceOverride(model, price(i));
      await store.setPriceOverride('alpha', price(9));
      expect(Object.keys(await store.priceOverrides())).toStrictEqual(['zeta', 'alpha', 'mu']);
      await store.setPriceOverride('zeta', null);
      await store.setPriceOverride('zeta', price(7));
      expect(Object.keys(await store.priceOverrides())).toStrictEqual(['alpha', 'mu', 'zeta']);
    },
  },
  {
    name: 'ping resolves on a working store',
    async run(store) {
      await expect(store.ping()).resolves.toBeUndefined();
    },
  },
  {
    name: 'close may be called twice; afterwards the store refuses work',
    async run(store) {
      await store.close();
      await store.close();
      await expect(store.ping()).rejects.toThrow();
      await expect(store.listKeys()).rejects.toThrow();
    },
  },
];
