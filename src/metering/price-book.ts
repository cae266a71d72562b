/**
 * The prices in force: the bundled table plus the admin's overrides from the store, re-read at
 * most every `ttlMs`, so an override set through one worker applies in all of them within seconds.
 */
import type { Store } from '../contract.js';
import { PriceTable } from './prices.js';

export class PriceBook {
  private table = new PriceTable();
  private loadedAt = -Infinity;
  private loading: Promise<PriceTable> | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
    private readonly ttlMs = 2_000,
  ) {}

  async current(): Promise<PriceTable> {
    if (this.clock() - this.loadedAt < this.ttlMs) return this.table;
    this.loading ??= this.store
      .priceOverrides()
      .then((overrides) => {
        this.table = new PriceTable().with(overrides);
        this.loadedAt = this.clock();
        return this.table;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  /** The table loaded last (the bundled one until the first load), without waiting for a reload. */
  get latest(): PriceTable {
    return this.table;
  }

  /** Forget the cached table (after this process changed an override). */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }
}
