/**
 * Command-line flags → the admin API's JSON fields. Values are checked here first so that a typo
 * gets a message naming the flag (the service checks everything again, in either mode).
 */
import { parseDuration } from '../keys/input.js';
import type { KeyBody, PriceInput } from './backend.js';
import { CliError, usageError } from './errors.js';

/** Words that clear a limit or list (`--rph none`). */
const NONE = new Set(['none', 'null', 'unlimited', 'off']);
const isNone = (value: string) => NONE.has(value.trim().toLowerCase());

export interface KeyFlags {
  name?: string;
  notes?: string;
  rph?: string;
  rpd?: string;
  tph?: string;
  tpd?: string;
  usdDay?: string;
  usdMonth?: string;
  maxConcurrent?: string;
  models?: string;
  endpoints?: string;
  ips?: string;
  expires?: string;
  /** false for `--no-expiry` (update). */
  expiry?: boolean;
  disable?: boolean;
  enable?: boolean;
}

/** A positive whole number, or null for `none`. */
export function parseCount(flag: string, value: string): number | null {
  if (isNone(value)) return null;
  const v = value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
    throw new CliError(`${flag} must be a positive whole number, or none for no limit (got ${JSON.stringify(value)})`);
  }
  return n;
}

/** A positive amount of US dollars (`5`, `0.50`, `$5`), or null for `none`. */
export function parseUsd(flag: string, value: string): number | null {
  if (isNone(value)) return null;
  const v = value.trim().replace(/^\$/, '');
  const n = Number(v);
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(v) || !(n > 0) || n > 1e9) {
    throw new CliError(`${flag} must be a positive amount of US dollars like 5 or 0.50, or none for no limit (got ${JSON.stringify(value)})`);
  }
  return n;
}

/** A comma list, or null for `none` (no per-key restriction). */
export function parseList(flag: string, value: string): string[] | null {
  if (isNone(value)) return null;
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.length === 0) throw new CliError(`${flag} lists nothing; give a comma list, or none to remove the restriction`);
  return items;
}

/** `30d`/`12h`/`90m`/`2w` from now, an ISO date or time, or `none`/`never`. */
export function parseExpiry(value: string, now: number): { expires_in: string } | { expires_at: string | null } {
  const v = value.trim();
  if (isNone(v) || v.toLowerCase() === 'never') return { expires_at: null };
  if (parseDuration(v) !== null) return { expires_in: v };
  const ms = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new CliError(`--expires must be a duration like 30d, 12h, 90m or 2w, an ISO date or time like 2026-12-31T18:00:00Z, or never (got ${JSON.stringify(value)})`);
  }
  if (ms <= now) throw new CliError(`--expires ${v} is in the past; to cut a key off now use: proxygpt keys revoke <key>`);
  return { expires_at: new Date(ms).toISOString() };
}

/** The body of POST /admin/keys (create) or PATCH /admin/keys/:key (update) for these flags. */
export function keyBody(flags: KeyFlags, now: number): KeyBody {
  const body: KeyBody = {};
  if (flags.name !== undefined) body.name = flags.name;
  if (flags.notes !== undefined) body.notes = flags.notes;
  const counts = [
    ['--rph', flags.rph, 'requests_per_hour'],
    ['--rpd', flags.rpd, 'requests_per_day'],
    ['--tph', flags.tph, 'tokens_per_hour'],
    ['--tpd', flags.tpd, 'tokens_per_day'],
    ['--max-concurrent', flags.maxConcurrent, 'max_concurrent'],
  ] as const;
  for (const [flag, value, field] of counts) if (value !== undefined) body[field] = parseCount(flag, value);
  if (flags.usdDay !== undefined) body.usd_per_day = parseUsd('--usd-day', flags.usdDay);
  if (flags.usdMonth !== undefined) body.usd_per_month = parseUsd('--usd-month', flags.usdMonth);
  if (flags.models !== undefined) body.models = parseList('--models', flags.models);
  if (flags.endpoints !== undefined) body.endpoints = parseList('--endpoints', flags.endpoints);
  if (flags.ips !== undefined) body.ips = parseList('--ips', flags.ips);
  if (flags.expires !== undefined && flags.expiry === false) throw usageError('give either --expires or --no-expiry, not both');
  if (flags.expires !== undefined) Object.assign(body, parseExpiry(flags.expires, now));
  if (flags.expiry === false) body.expires_at = null;
  if (flags.disable === true && flags.enable === true) throw usageError('give either --disable or --enable, not both');
  if (flags.disable === true) body.disabled = true;
  if (flags.enable === true) body.disabled = false;
  return body;
}

/** A price in USD per million tokens: a number from 0 to 1,000,000. */
export function parsePrice(flag: string, value: string): number {
  const v = value.trim().replace(/^\$/, '');
  const n = Number(v);
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(v) || n > 1e6) {
    throw new CliError(`${flag} must be a price in US dollars per million tokens, like 2.5 (got ${JSON.stringify(value)})`);
  }
  return n;
}

export function priceBody(flags: { input: string; output: string; cachedInput?: string }): PriceInput {
  const body: PriceInput = { input: parsePrice('--input', flags.input), output: parsePrice('--output', flags.output) };
  if (flags.cachedInput !== undefined) body.cached_input = parsePrice('--cached-input', flags.cachedInput);
  return body;
}

/** `--since`/`--until`: an ISO time, epoch milliseconds or a duration back from now, checked before asking. */
export function checkTime(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (parseDuration(v) !== null || /^\d+$/.test(v) || !Number.isNaN(Date.parse(v))) return v;
  throw new CliError(`${flag} must be an ISO time like 2026-05-01T00:00:00Z, epoch milliseconds, or a duration back from now like 7d (got ${JSON.stringify(value)})`);
}
