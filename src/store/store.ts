/**
 * The Store contract now lives in src/contract.ts with the other shared nouns; this module only
 * re-exports it so code written against the old path keeps compiling until it is moved over.
 */
export type { KeyPatch, KeyPolicy, NewKey, Store, StoredKey, UsageQuery, UsageRecord, UsageTotals } from '../contract.js';
