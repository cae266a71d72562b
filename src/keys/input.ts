/**
 * What an admin may say about a key, validated: the JSON of the admin API (snake_case) and the
 * CLI's flags both end up here. Limits must be positive, endpoints and models must lie within the
 * gateway's own lists (a key can never be given more than the gateway exposes), IPs must be
 * addresses or CIDR ranges.
 */
import { z } from 'zod';
import { parseEndpoints, type Config } from '../config.js';
import { invalidRequest } from '../errors.js';
import { parseCidr } from '../policy/key-access.js';
import { Policy } from '../policy/policy.js';
import type { KeyPolicy } from '../contract.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,63}$/;
const RESERVED_NAME = /^(key_[a-z2-7]{12}|env-key-\d+)$/;
const DURATION = /^(\d+)\s*(m|min|h|d|w)$/i;
const UNIT_MS: Record<string, number> = { m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `90m`, `2w` → milliseconds; null when not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2]!.toLowerCase()]!;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : null;
}

const count = z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable();
const dollars = z.number().positive().max(1e9).nullable();
const list = z.array(z.string().min(1).max(200)).max(200).nullable();

const fields = {
  name: z
    .string()
    .regex(NAME, 'names are 1-64 letters, digits and . _ @ : + - (starting with a letter or digit)')
    // Keys are found by id or by name, and usage by principal: a name that looks like a key id or
    // an environment key's id (env-key-N) would make `show`, `delete` or `usage` pick another key.
    .refine((name) => !RESERVED_NAME.test(name), 'names of the form key_… (12 characters) and env-key-N are reserved for ids'),
  notes: z.string().max(2000),
  expires_at: z.union([z.iso.datetime({ offset: true }), z.number().int().positive()]).nullable(),
  expires_in: z.string().refine((v) => parseDuration(v) !== null, 'use a duration like 30d, 12h, 90m or 2w'),
  disabled: z.boolean(),
  requests_per_hour: count,
  requests_per_day: count,
  tokens_per_hour: count,
  tokens_per_day: count,
  usd_per_day: dollars,
  usd_per_month: dollars,
  max_concurrent: z.number().int().positive().max(1_000_000).nullable(),
  endpoints: list,
  models: list,
  ips: list,
};

export const createKeySchema = z.strictObject({ ...fields, name: fields.name }).partial().required({ name: true });
export const updateKeySchema = z.strictObject(fields).partial();

export type CreateKeyInput = z.infer<typeof createKeySchema>;
export type UpdateKeyInput = z.infer<typeof updateKeySchema>;

export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    // An unknown field is reported at its parent's path: name the field itself.
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const param = path.join('.') || null;
    throw invalidRequest(`${param ? `${param}: ` : ''}${issue.message}`, param);
  }
  return result.data;
}

/** The expiry an input names, as epoch ms: undefined = unchanged, null = never. */
export function expiryOf(input: UpdateKeyInput, now: number): number | null | undefined {
  if (input.expires_in !== undefined) return now + parseDuration(input.expires_in)!;
  if (input.expires_at === undefined) return undefined;
  if (input.expires_at === null) return null;
  return typeof input.expires_at === 'number' ? input.expires_at : Date.parse(input.expires_at);
}

/** Applies the policy fields of `input` to `base`, checking them against the gateway's own lists. */
export function policyOf(input: UpdateKeyInput, base: KeyPolicy, config: Pick<Config, 'allowedEndpoints' | 'allowedModels'>): KeyPolicy {
  const policy: KeyPolicy = { ...base };
  const set = <K extends keyof KeyPolicy>(key: K, value: KeyPolicy[K] | undefined) => {
    if (value !== undefined) policy[key] = value;
  };
  set('requestsPerHour', input.requests_per_hour);
  set('requestsPerDay', input.requests_per_day);
  set('tokensPerHour', input.tokens_per_hour);
  set('tokensPerDay', input.tokens_per_day);
  set('usdPerDay', input.usd_per_day);
  set('usdPerMonth', input.usd_per_month);
  set('maxConcurrent', input.max_concurrent);
  if (input.endpoints !== undefined) {
    if (input.endpoints !== null) {
      const gateway = new Policy(config.allowedEndpoints, null);
      let rules;
      try {
        rules = parseEndpoints(input.endpoints.join(','), 'endpoints');
      } catch (err) {
        throw invalidRequest((err as Error).message, 'endpoints');
      }
      for (const rule of rules) {
        if (!gateway.coversRule(rule)) {
          throw invalidRequest(`endpoints: ${rule.method} ${rule.path} is not enabled on this gateway (PROXYGPT_ALLOWED_ENDPOINTS)`, 'endpoints');
        }
      }
    }
    policy.endpoints = input.endpoints;
  }
  if (input.models !== undefined) {
    if (input.models !== null && config.allowedModels !== null) {
      const gateway = new Policy(null, config.allowedModels);
      const outside = input.models.find((m) => !/[*?[\]{}]/.test(m) && !gateway.modelAllowed(m));
      if (outside !== undefined) throw invalidRequest(`models: ${outside} is not enabled on this gateway (PROXYGPT_ALLOWED_MODELS)`, 'models');
    }
    policy.models = input.models;
  }
  if (input.ips !== undefined) {
    const bad = input.ips?.find((ip) => parseCidr(ip) === null);
    if (bad !== undefined) throw invalidRequest(`ips: ${JSON.stringify(bad)} is not an IP address or CIDR range`, 'ips');
    policy.ips = input.ips;
  }
  return policy;
}
