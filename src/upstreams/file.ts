/**
 * The upstreams file (PROXYGPT_UPSTREAMS, YAML or JSON): read, validated with zod, and turned
 * into UpstreamsConfig. Every problem names the entry and the field (`upstreams[1].base_url: …`),
 * so a bad file stops the gateway at start with a message that says where to look. Keys are never
 * written in the file: each is a `${ENV_NAME}` reference, resolved here (an unset variable is an
 * error naming it; a literal key is refused without echoing it).
 */
import { readFileSync } from 'node:fs';
import { parse, YAMLError } from 'yaml';
import { z } from 'zod';
import type { ModelPrice } from '../contract.js';
import type { BreakerSettings, ModelRoute, UpstreamKey, UpstreamKind, UpstreamSpec, UpstreamsConfig } from './spec.js';

/** A problem with the upstreams file; the message says where (entry and field) and what. */
export class UpstreamsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamsFileError';
  }
}

type Env = Record<string, string | undefined>;

export const DEFAULT_ATTEMPTS = 3;
export const MAX_ATTEMPTS = 10;
export const DEFAULT_BREAKER: BreakerSettings = Object.freeze({ failures: 5, cooldownMs: 30_000, sitOutRateLimits: true });
const OPENAI_BASE_URL = 'https://api.openai.com/v1';

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const wholeNumber = (min: number, max: number) =>
  z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` });
const usd = z.number({ error: 'must be a number (USD per million tokens)' }).min(0, { error: 'must not be negative' }).max(1e6, { error: 'must be at most 1000000' });
const text = (what: string) => z.string({ error: `must be ${what}` }).trim().min(1, { error: `must be ${what}, not empty` });

const breakerSchema = z.strictObject({
  failures: wholeNumber(0, 1_000).optional(),
  cooldown_ms: wholeNumber(1, 86_400_000).optional(),
});

const priceSchema = z.strictObject({ input: usd, output: usd, cached_input: usd.optional() });

/** A model map's value: a rename (a deployment for Azure), null for "as it is", or both spelled out. */
const targetSchema = z.union(
  [z.string().trim().min(1, { error: 'must name a model (or a deployment), not be empty' }), z.null(), z.strictObject({ model: text('a model name').optional(), deployment: text('a deployment name').optional() })],
  { error: 'must be a model name (a deployment for azure), null, or {model, deployment}' },
);

const modelsSchema = z.union(
  [
    z.array(text('a model name or glob'), { error: 'must be a list' }).min(1, { error: 'must list at least one model' }),
    z.record(z.string().trim().min(1, { error: 'a model name or glob must not be empty' }), targetSchema).refine((map) => Object.keys(map).length > 0, { error: 'must map at least one model' }),
  ],
  { error: 'must be a list of model names or globs, or a map of model name (or glob) to its upstream name' },
);

/** Resolves `${NAME}` from the environment; the value itself is never put in a message. */
function secretSchema(env: Env) {
  return z.string({ error: 'must be "${ENV_NAME}", a reference to an environment variable holding the key' }).transform((value, ctx): { secret: string; source: string } => {
    const match = ENV_REFERENCE.exec(value.trim());
    if (match === null) {
      ctx.addIssue({ code: 'custom', message: 'must be "${ENV_NAME}", a reference to an environment variable holding the key; a key written in the file is refused' });
      return z.NEVER;
    }
    const name = match[1]!;
    const secret = unquoteValue(env[name] ?? '');
    if (secret === '') {
      ctx.addIssue({ code: 'custom', message: `the environment variable ${name} is not set` });
      return z.NEVER;
    }
    if (!/^[\x21-\x7e]+$/.test(secret)) {
      ctx.addIssue({ code: 'custom', message: `the key in ${name} may only contain printable ASCII characters without spaces` });
      return z.NEVER;
    }
    return { secret, source: name };
  });
}

function fileSchema(env: Env) {
  const secret = secretSchema(env);
  const keyEntry = z.union([secret, z.strictObject({ key: secret, weight: z.number({ error: 'must be a number' }).positive({ error: 'must be above 0' }).max(1e6).optional() })], {
    error: 'must be "${ENV_NAME}" or {key: "${ENV_NAME}", weight: N}',
  });
  const upstream = z.strictObject({
    name: z.string({ error: 'must be text' }).regex(NAME, { error: 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit' }),
    kind: z.enum(['openai', 'azure', 'openai-compatible'], { error: 'must be "openai", "azure" or "openai-compatible"' }).default('openai'),
    base_url: z.string({ error: 'must be a URL' }).optional(),
    api_key: z.union([keyEntry, z.array(keyEntry, { error: 'must be a list' }).min(1, { error: 'must list at least one key' })], { error: 'must be "${ENV_NAME}" or a list of them' }).optional(),
    api_version: text('an Azure API version such as "2024-10-21"').optional(),
    models: modelsSchema,
    weight: z.number({ error: 'must be a number' }).positive({ error: 'must be above 0' }).max(1e6, { error: 'must be at most 1000000' }).default(1),
    timeout_ms: wholeNumber(1, 3_600_000).optional(),
    prices: z.record(z.string().trim().min(1, { error: 'a model name or glob must not be empty' }), priceSchema).optional(),
    breaker: breakerSchema.optional(),
  });
  return z.strictObject({
    upstreams: z.array(upstream, { error: 'must be a list of upstreams' }).min(1, { error: 'must list at least one upstream' }),
    retry: z.strictObject({ attempts: wholeNumber(1, MAX_ATTEMPTS).optional() }).optional(),
    breaker: breakerSchema.optional(),
  });
}

type RawFile = z.output<ReturnType<typeof fileSchema>>;
type RawUpstream = RawFile['upstreams'][number];

function unquoteValue(value: string): string {
  let v = value.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) v = v.slice(1, -1).trim();
  return v;
}

/** `upstreams[1].models["gpt-4o"]` from a zod issue path. */
function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out === '' ? 'the file' : out;
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  errors?: Issue[][];
}

/**
 * The issue to report: for a union that failed, the issues of the one branch whose type matched
 * (a list with a bad element says which element), else the union's own message.
 */
function deepest(issue: Issue, path: PropertyKey[] = []): { path: PropertyKey[]; issue: Issue } {
  const here = [...path, ...issue.path];
  if (issue.code === 'invalid_union' && issue.errors !== undefined) {
    const matched = issue.errors.filter((branch) => !isTypeMismatch(branch));
    if (matched.length === 1 && matched[0]!.length > 0) return deepest(matched[0]![0]!, here);
  }
  return { path: here, issue };
}

/** Whether a union branch failed only because the value is of another type (a list, not text). */
function isTypeMismatch(branch: Issue[]): boolean {
  if (branch.length !== 1 || branch[0]!.path.length !== 0) return false;
  const only = branch[0]!;
  return only.code === 'invalid_type' || (only.code === 'invalid_union' && (only.errors ?? []).every(isTypeMismatch));
}

function describeIssue(raw: Issue): string {
  const { path, issue } = deepest(raw);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys ?? [];
    return `${pathText(path)}: unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  return `${pathText(path)}: ${issue.message}`;
}

const fail = (path: PropertyKey[], message: string): never => {
  throw new UpstreamsFileError(`${pathText(path)}: ${message}`);
};

function baseUrlOf(raw: RawUpstream, at: PropertyKey[]): URL {
  const value = raw.base_url ?? (raw.kind === 'openai' ? OPENAI_BASE_URL : fail([...at, 'base_url'], `is required for kind ${raw.kind}`));
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return fail([...at, 'base_url'], `is not a valid URL (got ${JSON.stringify(value)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail([...at, 'base_url'], `must be an http(s) URL (got ${JSON.stringify(value)})`);
  if (url.username || url.password) fail([...at, 'base_url'], 'must not contain credentials (give the key as api_key)');
  if (url.search || url.hash) fail([...at, 'base_url'], 'must not have a query or fragment');
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

function keysOf(raw: RawUpstream, at: PropertyKey[]): UpstreamKey[] {
  const given = raw.api_key === undefined ? [] : Array.isArray(raw.api_key) ? raw.api_key : [raw.api_key];
  const keys = given.map((entry) => ('key' in entry ? { ...entry.key, weight: entry.weight ?? 1 } : { ...entry, weight: 1 }));
  if (keys.length === 0 && raw.kind !== 'openai-compatible') fail([...at, 'api_key'], `is required for kind ${raw.kind}`);
  const seen = new Set<string>();
  keys.forEach((key, i) => {
    if (seen.has(key.secret)) fail([...at, 'api_key', ...(Array.isArray(raw.api_key) ? [i] : [])], `${key.source} holds the same key as another entry of this upstream`);
    seen.add(key.secret);
  });
  return keys;
}

function modelsOf(raw: RawUpstream, at: PropertyKey[]): ModelRoute[] {
  if (Array.isArray(raw.models)) return raw.models.map((pattern) => ({ pattern, model: null, deployment: null }));
  return Object.entries(raw.models).map(([pattern, target]) => {
    if (target === null) return { pattern, model: null, deployment: null };
    if (typeof target === 'string') return raw.kind === 'azure' ? { pattern, model: null, deployment: target } : { pattern, model: target, deployment: null };
    if (target.deployment !== undefined && raw.kind !== 'azure') fail([...at, 'models', pattern, 'deployment'], 'is only for kind azure');
    return { pattern, model: target.model ?? null, deployment: target.deployment ?? null };
  });
}

function pricesOf(raw: RawUpstream): Record<string, ModelPrice> | null {
  if (raw.prices === undefined) return null;
  const out: Record<string, ModelPrice> = {};
  for (const [model, p] of Object.entries(raw.prices)) out[model] = { input: p.input, cachedInput: p.cached_input ?? p.input, output: p.output };
  return out;
}

function upstreamOf(raw: RawUpstream, index: number, defaults: BreakerSettings): UpstreamSpec {
  const at: PropertyKey[] = ['upstreams', index];
  if (raw.kind === 'azure' && raw.api_version === undefined) fail([...at, 'api_version'], 'is required for kind azure (e.g. "2024-10-21")');
  if (raw.kind !== 'azure' && raw.api_version !== undefined) fail([...at, 'api_version'], 'is only for kind azure');
  return {
    name: raw.name,
    kind: raw.kind as UpstreamKind,
    baseUrl: baseUrlOf(raw, at),
    keys: keysOf(raw, at),
    apiVersion: raw.api_version ?? null,
    models: modelsOf(raw, at),
    weight: raw.weight,
    timeoutMs: raw.timeout_ms ?? null,
    prices: pricesOf(raw),
    breaker: { failures: raw.breaker?.failures ?? defaults.failures, cooldownMs: raw.breaker?.cooldown_ms ?? defaults.cooldownMs, sitOutRateLimits: true },
  };
}

/** Validates a parsed upstreams file (`data`) against the environment that holds its keys. */
export function upstreamsFromData(data: unknown, env: Env, file: string): UpstreamsConfig {
  const result = fileSchema(env).safeParse(data);
  if (!result.success) {
    // A field spelled wrong is the likely cause of a field missing: name it first.
    const issues = result.error.issues as unknown as Issue[];
    throw new UpstreamsFileError(describeIssue(issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!));
  }
  const raw = result.data;
  const defaults = { failures: raw.breaker?.failures ?? DEFAULT_BREAKER.failures, cooldownMs: raw.breaker?.cooldown_ms ?? DEFAULT_BREAKER.cooldownMs, sitOutRateLimits: true };
  const upstreams = raw.upstreams.map((u, i) => upstreamOf(u, i, defaults));
  const names = new Map<string, number>();
  upstreams.forEach((u, i) => {
    const other = names.get(u.name);
    if (other !== undefined) fail(['upstreams', i, 'name'], `${JSON.stringify(u.name)} is already the name of upstreams[${other}]`);
    names.set(u.name, i);
  });
  return { file, upstreams, attempts: raw.retry?.attempts ?? DEFAULT_ATTEMPTS };
}

/**
 * `${NAME}` written bare is no valid YAML in a flow list (`[${A}, ${B}]`: the brace opens a
 * map), yet that is how the keys are meant to be written: each reference is swapped for a token
 * YAML reads as plain text before parsing, and swapped back in every string after.
 */
const BARE_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const TOKEN = /\$ENV\u27e8([A-Za-z_][A-Za-z0-9_]*)\u27e9/g;

function restoreReferences(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(TOKEN, (_, name: string) => `\${${name}}`);
  if (Array.isArray(value)) return value.map(restoreReferences);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [restoreReferences(k) as string, restoreReferences(v)]));
  }
  return value;
}

/** Parses the text of an upstreams file (YAML, or JSON, which is YAML too). */
export function parseUpstreamsText(textOfFile: string, env: Env, file: string): UpstreamsConfig {
  let data: unknown;
  try {
    data = restoreReferences(parse(textOfFile.replace(BARE_REFERENCE, (_, name: string) => `$ENV\u27e8${name}\u27e9`), { uniqueKeys: true, maxAliasCount: 100 }));
  } catch (err) {
    // Only the first line of the parser's message: the rest quotes the file, and a line of it may hold a key.
    if (err instanceof YAMLError) throw new UpstreamsFileError(`${file} is not valid YAML or JSON: ${err.message.split('\n')[0]!.replace(/:$/, '')}`);
    throw err;
  }
  if (data === null || data === undefined) throw new UpstreamsFileError(`${file} is empty: it must list upstreams`);
  return upstreamsFromData(data, env, file);
}

/** Reads and validates the upstreams file at `path`. */
export function readUpstreamsFile(path: string, env: Env): UpstreamsConfig {
  let textOfFile: string;
  try {
    textOfFile = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new UpstreamsFileError(`cannot read ${path}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  return parseUpstreamsText(textOfFile, env, path);
}
