/**
 * Key administration, shared by the admin API and the CLI's direct mode: create (the secret is
 * returned once and stored only as a hash), list, show, update, rotate, revoke (disable), delete,
 * usage reports and price overrides. Answers in the admin API's JSON shape (snake_case, ISO times).
 */
import type { Config } from '../config.js';
import { conflict, notFound } from '../errors.js';
import { keyStatus } from '../auth/authenticator.js';
import { displayPrefix, generateKeyId, generateSecret, hashSecret } from '../auth/secrets.js';
import { BUNDLED_PRICES } from '../metering/prices.js';
import type { ModelPrice, Store, StoredKey, UsageTotals } from '../contract.js';
import { KeyNameTaken } from '../store/errors.js';
import { createKeySchema, expiryOf, parseInput, policyOf, updateKeySchema } from './input.js';

export interface KeyView {
  id: string;
  name: string;
  notes: string;
  prefix: string;
  status: 'active' | 'disabled' | 'expired';
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  disabled: boolean;
  requests_per_hour: number | null;
  requests_per_day: number | null;
  tokens_per_hour: number | null;
  tokens_per_day: number | null;
  usd_per_day: number | null;
  usd_per_month: number | null;
  max_concurrent: number | null;
  endpoints: string[] | null;
  models: string[] | null;
  ips: string[] | null;
}

export interface UsageView {
  since: string;
  until: string;
  key: string | null;
  /** Only the calls this upstream answered (present when asked for). */
  upstream?: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  usd: number;
  status_counts: Record<string, number>;
  by_key?: Record<string, Omit<UsageView, 'since' | 'until' | 'key' | 'by_key'>>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function viewOf(key: StoredKey, now: number): KeyView {
  const p = key.policy;
  return {
    id: key.id,
    name: key.name,
    notes: key.notes,
    prefix: key.prefix,
    status: keyStatus(key, now),
    created_at: iso(key.createdAt),
    updated_at: iso(key.updatedAt),
    expires_at: key.expiresAt === null ? null : iso(key.expiresAt),
    disabled: key.disabled,
    requests_per_hour: p.requestsPerHour ?? null,
    requests_per_day: p.requestsPerDay ?? null,
    tokens_per_hour: p.tokensPerHour ?? null,
    tokens_per_day: p.tokensPerDay ?? null,
    usd_per_day: p.usdPerDay ?? null,
    usd_per_month: p.usdPerMonth ?? null,
    max_concurrent: p.maxConcurrent ?? null,
    endpoints: p.endpoints ?? null,
    models: p.models ?? null,
    ips: p.ips ?? null,
  };
}

function totalsView(t: UsageTotals) {
  return {
    requests: t.requests,
    prompt_tokens: t.promptTokens,
    completion_tokens: t.completionTokens,
    total_tokens: t.promptTokens + t.completionTokens,
    usd: Math.round(t.usd * 1e6) / 1e6,
    status_counts: t.byStatus,
  };
}

export class KeyService {
  constructor(
    private readonly store: Store,
    private readonly config: Pick<Config, 'allowedEndpoints' | 'allowedModels'>,
    private readonly clock: () => number = Date.now,
  ) {}

  private async find(idOrName: string): Promise<StoredKey> {
    const key = await this.store.getKey(idOrName);
    if (key === null) throw notFound(`No key named or with id ${JSON.stringify(idOrName)}.`);
    return key;
  }

  async create(body: unknown): Promise<{ key: KeyView; secret: string }> {
    const input = parseInput(createKeySchema, body);
    const now = this.clock();
    const secret = generateSecret();
    try {
      const key = await this.store.createKey({
        id: generateKeyId(),
        name: input.name,
        notes: input.notes ?? '',
        hash: hashSecret(secret),
        prefix: displayPrefix(secret),
        expiresAt: expiryOf(input, now) ?? null,
        policy: policyOf(input, {}, this.config),
        now,
      });
      if (input.disabled === true) await this.store.updateKey(key.id, { disabled: true }, now);
      return { key: viewOf((await this.store.getKey(key.id))!, now), secret };
    } catch (err) {
      if (err instanceof KeyNameTaken) throw conflict(`A key named ${JSON.stringify(input.name)} already exists.`);
      throw err;
    }
  }

  async list(): Promise<KeyView[]> {
    const now = this.clock();
    return (await this.store.listKeys()).map((k) => viewOf(k, now));
  }

  async show(idOrName: string): Promise<KeyView> {
    return viewOf(await this.find(idOrName), this.clock());
  }

  async update(idOrName: string, body: unknown): Promise<KeyView> {
    const input = parseInput(updateKeySchema, body);
    const key = await this.find(idOrName);
    const now = this.clock();
    try {
      const updated = await this.store.updateKey(
        key.id,
        { name: input.name, notes: input.notes, disabled: input.disabled, expiresAt: expiryOf(input, now), policy: policyOf(input, key.policy, this.config) },
        Math.max(now, key.updatedAt + 1),
      );
      return viewOf(updated!, now);
    } catch (err) {
      if (err instanceof KeyNameTaken) throw conflict(`A key named ${JSON.stringify(input.name)} already exists.`);
      throw err;
    }
  }

  /** A new secret for the key; the old one stops working at once. */
  async rotate(idOrName: string): Promise<{ key: KeyView; secret: string }> {
    const key = await this.find(idOrName);
    const secret = generateSecret();
    const now = this.clock();
    const updated = await this.store.setKeySecret(key.id, hashSecret(secret), displayPrefix(secret), Math.max(now, key.updatedAt + 1));
    return { key: viewOf(updated!, now), secret };
  }

  /** Disables the key (it keeps its history and can be re-enabled with update). */
  async revoke(idOrName: string): Promise<KeyView> {
    return this.update(idOrName, { disabled: true });
  }

  async remove(idOrName: string): Promise<{ id: string; deleted: true }> {
    const key = await this.find(idOrName);
    await this.store.deleteKey(key.id);
    return { id: key.id, deleted: true };
  }

  async usage(options: { key?: string; since?: number; until?: number; upstream?: string }): Promise<UsageView> {
    const now = this.clock();
    const since = options.since ?? now - 30 * 86_400_000;
    const until = options.until ?? now + 1;
    const principal = options.key === undefined ? undefined : (await this.store.getKey(options.key))?.id ?? options.key;
    const upstream = options.upstream === '' ? undefined : options.upstream;
    const { total, byPrincipal } = await this.store.usage({ sinceMs: since, untilMs: until, principal, ...(upstream === undefined ? {} : { upstream }) });
    const view: UsageView = { since: iso(since), until: iso(until), key: principal ?? null, ...(upstream === undefined ? {} : { upstream }), ...totalsView(total) };
    if (principal === undefined) view.by_key = Object.fromEntries(Object.entries(byPrincipal).map(([k, t]) => [k, totalsView(t)]));
    return view;
  }

  async prices(): Promise<{ bundled: Record<string, ModelPrice>; overrides: Record<string, ModelPrice> }> {
    return { bundled: BUNDLED_PRICES, overrides: await this.store.priceOverrides() };
  }

  async setPrice(model: string, price: ModelPrice | null): Promise<void> {
    await this.store.setPriceOverride(model, price);
  }
}
