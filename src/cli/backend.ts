/**
 * What the commands need from ProxyGPT, whichever way it is reached: the database itself (direct
 * mode, see direct.ts) or a running server's admin API (remote mode, see remote.ts). Both answer
 * with exactly the admin API's JSON, so the commands print the same output in either mode.
 */
import type { KeyView, UsageView } from '../keys/service.js';
import type { ModelPrice } from '../contract.js';

/** A created or rotated key: its view plus the secret (`key`), which is never shown again. */
export type KeyWithSecret = KeyView & { key: string };

export interface KeyList {
  object: 'list';
  data: KeyView[];
}

export interface PriceList {
  bundled: Record<string, ModelPrice>;
  overrides: Record<string, ModelPrice>;
}

/** The admin API's body for PUT /admin/prices/:model, USD per million tokens. */
export interface PriceInput {
  input: number;
  output: number;
  cached_input?: number;
}

export type PriceSet = { model: string } & ModelPrice;

export interface UsageQuery {
  key?: string;
  /** ISO time, epoch ms or a duration back from now (`7d`), as the admin API takes it. */
  since?: string;
  until?: string;
  /** Only the calls this upstream answered. */
  upstream?: string;
}

/** The admin API's fields (snake_case); see src/keys/input.ts for their rules. */
export type KeyBody = Record<string, unknown>;

export interface AdminBackend {
  createKey(body: KeyBody): Promise<KeyWithSecret>;
  listKeys(): Promise<KeyList>;
  showKey(key: string): Promise<KeyView>;
  updateKey(key: string, body: KeyBody): Promise<KeyView>;
  rotateKey(key: string): Promise<KeyWithSecret>;
  revokeKey(key: string): Promise<KeyView>;
  deleteKey(key: string): Promise<{ id: string; deleted: true }>;
  usage(query: UsageQuery): Promise<UsageView>;
  prices(): Promise<PriceList>;
  setPrice(model: string, price: PriceInput): Promise<PriceSet>;
  unsetPrice(model: string): Promise<{ model: string; deleted: true }>;
  close(): Promise<void>;
}
