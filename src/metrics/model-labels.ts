/**
 * The `model` label of a call, from a set the gateway knows, so that clients (who choose model
 * names) cannot grow the number of series: an exact name of PROXYGPT_ALLOWED_MODELS stays as it
 * is; otherwise the price table's entry that prices the model (bundled or an admin's override:
 * `gpt-4o-2024-08-06` is counted as `gpt-4o`, the entry it is billed at); anything else is
 * `other`, and a call without a model (`GET /v1/models`) is `none`. The usage records keep the
 * name as sent. Answers are cached per name (a bounded number of names); the cache is dropped
 * whenever the price table is reloaded (every few seconds while calls come: see PriceBook).
 */
import type { PriceTable } from '../metering/prices.js';

export const OTHER_MODEL = 'other';
export const NO_MODEL = 'none';

/** Names remembered at most; past it a name is looked up each time (a few prefix checks). */
const MAX_CACHED = 1_000;

/** Characters that make an allowed-models entry a glob (picomatch), not one model's name. */
const GLOB = /[*?[\]{}()!+@]/;

export class ModelLabels {
  private readonly allowedNames: ReadonlySet<string>;
  private table: PriceTable | null = null;
  private readonly cache = new Map<string, string>();

  constructor(
    /** The price table in force (it changes when the admin sets prices). */
    private readonly prices: () => PriceTable,
    allowedModels: readonly string[] | null,
  ) {
    this.allowedNames = new Set((allowedModels ?? []).filter((entry) => !GLOB.test(entry)));
  }

  labelOf(model: string | null): string {
    if (model === null) return NO_MODEL;
    const table = this.prices();
    if (table !== this.table) {
      this.table = table;
      this.cache.clear();
    }
    const cached = this.cache.get(model);
    if (cached !== undefined) return cached;
    const label = this.allowedNames.has(model) ? model : (table.nameFor(model) ?? OTHER_MODEL);
    if (this.cache.size < MAX_CACHED) this.cache.set(model, label);
    return label;
  }
}
