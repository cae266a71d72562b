/**
 * Prices per model in USD per million tokens (input, cached input, output), bundled for OpenAI's
 * public models and overridable by the admin. A model is priced by its longest matching name
 * prefix, so dated snapshots (`gpt-4o-2024-08-06`) take their family's price. Models not in the
 * table are priced at `fallback` so a USD budget is never bypassed by an unknown model name.
 */
import type { ModelPrice, TokenUsage } from '../contract.js';

export type { ModelPrice } from '../contract.js';

/** USD per 1M tokens. Checked against OpenAI's public price list (standard tier). */
export const BUNDLED_PRICES: Record<string, ModelPrice> = {
  'gpt-5': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5-mini': { input: 0.25, cachedInput: 0.025, output: 2 },
  'gpt-5-nano': { input: 0.05, cachedInput: 0.005, output: 0.4 },
  'gpt-4.1': { input: 2, cachedInput: 0.5, output: 8 },
  'gpt-4.1-mini': { input: 0.4, cachedInput: 0.1, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, cachedInput: 0.025, output: 0.4 },
  'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
  'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 },
  'gpt-4-turbo': { input: 10, cachedInput: 10, output: 30 },
  'gpt-4': { input: 30, cachedInput: 30, output: 60 },
  'gpt-3.5-turbo': { input: 0.5, cachedInput: 0.5, output: 1.5 },
  o1: { input: 15, cachedInput: 7.5, output: 60 },
  'o1-mini': { input: 1.1, cachedInput: 0.55, output: 4.4 },
  o3: { input: 2, cachedInput: 0.5, output: 8 },
  'o3-mini': { input: 1.1, cachedInput: 0.55, output: 4.4 },
  'o4-mini': { input: 1.1, cachedInput: 0.275, output: 4.4 },
  'text-embedding-3-small': { input: 0.02, cachedInput: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, cachedInput: 0.13, output: 0 },
  'text-embedding-ada-002': { input: 0.1, cachedInput: 0.1, output: 0 },
};

/** What an unknown model costs: the price of gpt-4o, documented in the README. */
export const FALLBACK_PRICE: ModelPrice = BUNDLED_PRICES['gpt-4o']!;

export class PriceTable {
  private readonly names: string[];

  constructor(
    private readonly prices: Record<string, ModelPrice> = BUNDLED_PRICES,
    private readonly fallback: ModelPrice = FALLBACK_PRICE,
  ) {
    this.names = Object.keys(prices).sort((a, b) => b.length - a.length);
  }

  /** A table with `overrides` replacing or adding entries. */
  with(overrides: Record<string, ModelPrice>): PriceTable {
    return new PriceTable({ ...this.prices, ...overrides }, this.fallback);
  }

  /** The table's entry that prices `model` (its own name, or its longest prefix family); null: none. */
  nameFor(model: string | null): string | null {
    if (model !== null) {
      for (const name of this.names) {
        if (model === name || model.startsWith(`${name}-`)) return name;
      }
    }
    return null;
  }

  priceOf(model: string | null): { price: ModelPrice; known: boolean } {
    const name = this.nameFor(model);
    return name === null ? { price: this.fallback, known: false } : { price: this.prices[name]!, known: true };
  }

  /**
   * Cost in micro-dollars (integer, 1e-6 USD), the unit the limiter counts USD in, rounded up.
   * Prices are per million tokens, so tokens × price is already micro-dollars; it is rounded to
   * 1e-6 first so that floating-point noise (205 × 0.6 = 123.00000000000001) does not add one.
   */
  costMicroUsd(model: string | null, usage: TokenUsage): number {
    return costAt(this.priceOf(model).price, usage);
  }
}

/** What `usage` costs at `price`, in micro-dollars rounded up (see PriceTable.costMicroUsd). */
export function costAt(price: ModelPrice, usage: TokenUsage): number {
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const micro = (usage.promptTokens - cached) * price.input + cached * price.cachedInput + usage.completionTokens * price.output;
  return Math.ceil(Math.round(micro * 1e6) / 1e6);
}
