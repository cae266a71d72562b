/**
 * The Store contract, backend-neutral: cases that use only the Store interface (no SQL, no file or
 * table in an assertion), each run on a fresh, empty store of every backend by
 * store-contract.test.ts (the pattern of Hono's router/common.case.test.ts). Expectations are
 * worked out by hand in each case, never with the store's own formula.
 */
import { keyCases } from './store-contract-keys.js';
import { usageCases } from './store-contract-usage.js';
import { priceAndLifecycleCases } from './store-contract-prices.js';
import { rollupCases } from './store-contract-rollups.js';
import { rollupStepCases } from './store-contract-rollup-steps.js';
import type { StoreCase } from './store-contract-fixtures.js';

export type { StoreCase } from './store-contract-fixtures.js';

export const storeCases: readonly StoreCase[] = [...keyCases, ...usageCases, ...rollupCases, ...rollupStepCases, ...priceAndLifecycleCases];
