/**
 * Human-readable output: plain, borderless tables (cli-table3) that read well in a terminal and
 * still grep and cut well. `--json` bypasses all of this and prints the admin API's JSON.
 */
import Table from 'cli-table3';
import type { KeyView, UsageView } from '../keys/service.js';
import type { ModelPrice } from '../contract.js';
import type { KeyWithSecret, PriceList, PriceSet } from './backend.js';

const PLAIN_CHARS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
};

type Cell = string | number;

export function table(head: string[] | null, rows: Cell[][], align: Array<'left' | 'right'> = []): string {
  const t = new Table({
    ...(head === null ? {} : { head }),
    colAligns: align,
    chars: PLAIN_CHARS,
    style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [], compact: true },
  });
  t.push(...rows);
  return `${t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')}\n`;
}

const number = (n: number) => n.toLocaleString('en-US');

/** `$5`, `$0.5`, `$0.001234` (at most 6 decimals, as the API rounds). */
function usd(n: number): string {
  return `$${Number(n.toFixed(6)).toLocaleString('en-US', { maximumFractionDigits: 6 })}`;
}

/** `2026-05-01 12:00:00 UTC`. */
export function time(iso: string): string {
  return iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
}

function relative(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const abs = Math.abs(ms);
  const [n, unit] =
    abs >= 2 * 86_400_000 ? [Math.round(abs / 86_400_000), 'days'] : abs >= 2 * 3_600_000 ? [Math.round(abs / 3_600_000), 'hours'] : [Math.max(1, Math.round(abs / 60_000)), 'minutes'];
  return ms >= 0 ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

/** `100 req/h, 1,000 req/d, 200,000 tok/d, $5/day, $50/month`, or `none`. */
export function limitsSummary(key: KeyView): string {
  const parts: string[] = [];
  if (key.requests_per_hour !== null) parts.push(`${number(key.requests_per_hour)} req/h`);
  if (key.requests_per_day !== null) parts.push(`${number(key.requests_per_day)} req/d`);
  if (key.tokens_per_hour !== null) parts.push(`${number(key.tokens_per_hour)} tok/h`);
  if (key.tokens_per_day !== null) parts.push(`${number(key.tokens_per_day)} tok/d`);
  if (key.usd_per_day !== null) parts.push(`${usd(key.usd_per_day)}/day`);
  if (key.usd_per_month !== null) parts.push(`${usd(key.usd_per_month)}/month`);
  if (key.max_concurrent !== null && key.max_concurrent !== undefined) parts.push(`${number(key.max_concurrent)} at once`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

export function keyList(keys: KeyView[]): string {
  if (keys.length === 0) return 'No stored keys. Create one with: proxygpt keys create --name <name>\n';
  return table(
    ['ID', 'NAME', 'STATUS', 'PREFIX', 'LIMITS', 'EXPIRES'],
    keys.map((k) => [k.id, k.name, k.status, k.prefix, limitsSummary(k), k.expires_at === null ? 'never' : time(k.expires_at)]),
  );
}

const limit = (value: number | null, unit: string) => (value === null ? 'no limit' : `${number(value)} ${unit}`);
const money = (value: number | null, unit: string) => (value === null ? 'no limit' : `${usd(value)} ${unit}`);
const allowlist = (value: string[] | null) => (value === null ? "all the gateway's" : value.join(', '));

export function keyDetail(key: KeyView, now = Date.now()): string {
  return table(null, [
    ['id', key.id],
    ['name', key.name],
    ['status', key.status],
    ['prefix', key.prefix],
    ['notes', key.notes === '' ? '-' : key.notes],
    ['created', time(key.created_at)],
    ['updated', time(key.updated_at)],
    ['expires', key.expires_at === null ? 'never' : `${time(key.expires_at)} (${relative(key.expires_at, now)})`],
    ['requests/hour', limit(key.requests_per_hour, 'requests')],
    ['requests/day', limit(key.requests_per_day, 'requests')],
    ['tokens/hour', limit(key.tokens_per_hour, 'tokens')],
    ['tokens/day', limit(key.tokens_per_day, 'tokens')],
    ['usd/day', money(key.usd_per_day, 'per rolling day')],
    ['usd/month', money(key.usd_per_month, 'per calendar month (UTC)')],
    ['in flight', limit(key.max_concurrent ?? null, 'calls at once')],
    ['endpoints', allowlist(key.endpoints)],
    ['models', allowlist(key.models)],
    ['ips', key.ips === null ? 'any' : key.ips.join(', ')],
  ]);
}

/** The secret, set apart so it is easy to copy, with the warning that it is shown only now. */
export function secretNotice(created: KeyWithSecret): string {
  return [
    '',
    `Secret key for ${created.name}:`,
    '',
    `    ${created.key}`,
    '',
    'Copy it now: it will not be shown again (ProxyGPT keeps only its hash).',
    '',
  ].join('\n');
}

export function created(key: KeyWithSecret): string {
  return `Created key ${key.name} (${key.id}).\n\n${keyDetail(key)}${secretNotice(key)}`;
}

export function rotated(key: KeyWithSecret): string {
  return `Rotated key ${key.name} (${key.id}): the old secret no longer works.\n\n${keyDetail(key)}${secretNotice(key)}`;
}

export function updated(key: KeyView): string {
  return `Updated key ${key.name} (${key.id}).\n\n${keyDetail(key)}`;
}

export function revoked(key: KeyView): string {
  return `Revoked key ${key.name} (${key.id}): it is disabled and stops working at once.\nTo allow it again: proxygpt keys update ${key.id} --enable\n`;
}

export function deleted(result: { id: string }): string {
  return `Deleted key ${result.id}.\n`;
}

function statuses(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([status, n]) => `${status}: ${number(n)}`).join(', ');
}

type Totals = Pick<UsageView, 'requests' | 'prompt_tokens' | 'completion_tokens' | 'total_tokens' | 'usd' | 'status_counts'>;

const usageRow = (label: string, name: string, t: Totals): Cell[] => [
  label,
  name,
  number(t.requests),
  number(t.prompt_tokens),
  number(t.completion_tokens),
  number(t.total_tokens),
  usd(t.usd),
  statuses(t.status_counts),
];

/** Usage over the range: one row per key (named where the key still exists) and the total. */
export function usage(view: UsageView, names: Map<string, string>): string {
  const head = ['KEY', 'NAME', 'REQUESTS', 'PROMPT TOKENS', 'COMPLETION TOKENS', 'TOTAL TOKENS', 'USD', 'STATUS CODES'];
  const align: Array<'left' | 'right'> = ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'left'];
  const rows: Cell[][] = [];
  if (view.by_key !== undefined) {
    const keys = Object.keys(view.by_key).sort((a, b) => (names.get(a) ?? a).localeCompare(names.get(b) ?? b));
    for (const id of keys) rows.push(usageRow(id, names.get(id) ?? '-', view.by_key[id]!));
    rows.push(usageRow('total', '', view));
  } else {
    rows.push(usageRow(view.key ?? '-', view.key === null ? '' : (names.get(view.key) ?? '-'), view));
  }
  const scope = view.key === null ? 'all keys' : `key ${view.key}`;
  const heading = `Usage of ${scope} from ${time(view.since)} to ${time(view.until)}\n\n`;
  if (view.requests === 0) return `${heading}No recorded calls in this range.\n`;
  return `${heading}${table(head, rows, align)}`;
}

export function priceList(prices: PriceList): string {
  const models = [...new Set([...Object.keys(prices.bundled), ...Object.keys(prices.overrides)])].sort();
  const rows = models.map((model) => {
    const override = prices.overrides[model];
    const price: ModelPrice = override ?? prices.bundled[model]!;
    return [model, usd(price.input), usd(price.cachedInput), usd(price.output), override === undefined ? 'bundled' : 'override'];
  });
  return `USD per million tokens. A model takes the price of its longest matching name prefix.\n\n${table(
    ['MODEL', 'INPUT', 'CACHED INPUT', 'OUTPUT', 'SOURCE'],
    rows,
    ['left', 'right', 'right', 'right', 'left'],
  )}`;
}

export function priceSet(price: PriceSet): string {
  return `Price of ${price.model} set (USD per million tokens): input ${usd(price.input)}, cached input ${usd(price.cachedInput)}, output ${usd(price.output)}.\n`;
}

export function priceUnset(result: { model: string }): string {
  return `Price override of ${result.model} removed.\n`;
}
