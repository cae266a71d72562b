/**
 * `proxygpt upstreams list` and `proxygpt upstreams check`: the upstreams file validated as the
 * server validates it (the same messages, naming the entry and field), shown as a table (each
 * key only as its last 4 characters and its variable), and for `check` each key of each upstream
 * probed with GET /models (Azure: /openai/models): its status, how many models it lists, how long
 * it took. Without an upstreams file: the one upstream of OPENAI_API_KEY / OPENAI_BASE_URL.
 */
import { unquote } from '../config.js';
import { readUpstreamsFile, UpstreamsFileError } from '../upstreams/file.js';
import { probeModels, type ProbeResult } from '../upstreams/model-list.js';
import { singleUpstream, type ModelRoute, type UpstreamsConfig, type UpstreamSpec } from '../upstreams/spec.js';
import { keyHint, Upstream } from '../upstreams/upstream.js';
import { CliError, usageError } from './errors.js';
import { table } from './format.js';

type Env = Record<string, string | undefined>;

/** The upstreams the server would use: `file`, else PROXYGPT_UPSTREAMS, else OPENAI_API_KEY / OPENAI_BASE_URL. */
export function readUpstreams(env: Env, file: string | undefined): UpstreamsConfig {
  const path = file ?? (env.PROXYGPT_UPSTREAMS?.trim() || undefined);
  try {
    if (path !== undefined) return readUpstreamsFile(path, env);
  } catch (err) {
    if (err instanceof UpstreamsFileError) throw new CliError(`${file === undefined ? 'PROXYGPT_UPSTREAMS' : '--file'}: ${err.message}`);
    throw err;
  }
  const key = unquote(env.OPENAI_API_KEY ?? '');
  if (key === '') throw usageError('no upstreams: set PROXYGPT_UPSTREAMS (or pass --file), or OPENAI_API_KEY');
  const base = unquote(env.OPENAI_BASE_URL ?? '') || 'https://api.openai.com/v1';
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new CliError(`OPENAI_BASE_URL: is not a valid URL (got ${JSON.stringify(base)})`);
  }
  url.pathname = url.pathname.replace(/\/+$/, '');
  url.search = '';
  url.hash = '';
  return singleUpstream(url, key);
}

const modelText = (m: ModelRoute) => (m.deployment !== null ? `${m.pattern} → ${m.deployment}${m.model !== null ? ` (${m.model})` : ''}` : m.model !== null ? `${m.pattern} → ${m.model}` : m.pattern);

function upstreamJson(u: UpstreamSpec) {
  return {
    name: u.name,
    kind: u.kind,
    base_url: u.baseUrl.href.replace(/\/$/, ''),
    api_version: u.apiVersion,
    keys: u.keys.map((k) => ({ key: keyHint(k.secret), source: k.source, weight: k.weight })),
    models: u.models.map((m) => ({ model: m.pattern, upstream_model: m.model, deployment: m.deployment })),
    weight: u.weight,
    timeout_ms: u.timeoutMs,
    prices: u.prices,
    breaker: { failures: u.breaker.failures, cooldown_ms: u.breaker.cooldownMs },
  };
}

export function upstreamsListJson(config: UpstreamsConfig) {
  return { file: config.file, attempts: config.attempts, upstreams: config.upstreams.map(upstreamJson) };
}

export function upstreamsListText(config: UpstreamsConfig): string {
  const source = config.file === null ? 'OPENAI_API_KEY / OPENAI_BASE_URL (no upstreams file)' : config.file;
  const rows = config.upstreams.map((u) => [
    u.name,
    u.kind,
    u.baseUrl.href.replace(/\/$/, ''),
    u.keys.length === 0 ? 'none' : u.keys.map((k) => `${keyHint(k.secret)} (${k.source})`).join(', '),
    u.models.map(modelText).join(', '),
    u.weight,
  ]);
  return `Upstreams from ${source}, at most ${config.attempts} attempt${config.attempts === 1 ? '' : 's'} per call:\n${table(['NAME', 'KIND', 'BASE URL', 'KEYS', 'MODELS', 'WEIGHT'], rows, ['left', 'left', 'left', 'left', 'left', 'right'])}`;
}

export interface CheckRow extends ProbeResult {
  upstream: string;
  key: string;
}

/** Probes every key of every upstream (all at once) with GET /models. */
export async function checkUpstreams(config: UpstreamsConfig, timeoutMs: number): Promise<CheckRow[]> {
  const upstreams = config.upstreams.map((spec) => new Upstream(spec, timeoutMs));
  try {
    const probes = upstreams.flatMap((u) => u.keys.map(async (key) => ({ upstream: u.name, key: key.hint, ...(await probeModels(u, Date.now(), timeoutMs, key)) })));
    return await Promise.all(probes);
  } finally {
    await Promise.all(upstreams.map((u) => u.close()));
  }
}

export function checkText(rows: CheckRow[]): string {
  const body = rows.map((r) => [r.upstream, r.key, r.error === null ? 'ok' : 'FAILED', r.status ?? '-', r.error === null ? r.models.length : '-', r.ms, r.error ?? '']);
  return table(['UPSTREAM', 'KEY', 'RESULT', 'STATUS', 'MODELS', 'MS', 'ERROR'], body, ['left', 'left', 'left', 'right', 'right', 'right', 'left']);
}
