/**
 * The models this gateway's upstreams serve, for GET /v1/models when there are several upstreams
 * (one upstream's own list would leave out the others, and would show deployment names instead of
 * the names clients use). Each upstream contributes the models it names in `models`, and for its
 * globs the models its own GET /models lists that they match (asked at most once a minute per
 * upstream; an upstream that does not answer contributes its named models only, and is asked
 * again after 10 s). Also the probe of `proxygpt upstreams check`.
 */
import { CallSignal } from '../proxy/forward.js';
import type { UpstreamRouter } from './router.js';
import type { Upstream, UpstreamKeyEntry } from './upstream.js';

/** A model and the first upstream (in the file's order) that serves it. */
export interface ListedModel {
  id: string;
  upstream: string;
}

export interface ProbeResult {
  /** The HTTP status of the upstream's model list, or null when it did not answer. */
  status: number | null;
  /** The model ids it listed (empty unless it answered 2xx with a list). */
  models: string[];
  /** Why not, without anything the upstream sent: a status or an error code. */
  error: string | null;
  ms: number;
}

const LIST_TTL_MS = 60_000;
const FAILED_TTL_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;
/** Most of a model list the gateway reads (OpenAI's is ~20 KB). */
const MAX_LIST_BYTES = 4 * 1024 * 1024;

/** GET /models of one upstream (Azure: /openai/models) with `key`, by default its first key that is available now. */
export async function probeModels(upstream: Upstream, now: number, timeoutMs = PROBE_TIMEOUT_MS, key: UpstreamKeyEntry = upstream.keys.find((k) => k.health.availableAt(now) <= now) ?? upstream.keys[0]!): Promise<ProbeResult> {
  const started = performance.now();
  const { path, search } = upstream.address('/models', '', null);
  const signal = new CallSignal();
  const timer = setTimeout(() => signal.abort(), timeoutMs);
  const ms = () => Math.round(performance.now() - started);
  try {
    const res = await upstream.pool.send({ method: 'GET', path, search, headers: { accept: 'application/json' }, body: null, signal, apiKey: key.secret, headersTimeoutMs: timeoutMs });
    if (res.statusCode < 200 || res.statusCode >= 300 || Number(res.headers['content-length'] ?? 0) > MAX_LIST_BYTES) {
      await res.body.dump().catch(() => undefined);
      return { status: res.statusCode, models: [], error: `HTTP ${res.statusCode}`, ms: ms() };
    }
    const text = await res.body.text();
    let ids: string[] = [];
    try {
      const data = (JSON.parse(text) as { data?: unknown }).data;
      if (Array.isArray(data)) ids = data.map((m) => (m as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === 'string');
    } catch {
      return { status: res.statusCode, models: [], error: 'not a model list', ms: ms() };
    }
    return { status: res.statusCode, models: ids, error: null, ms: ms() };
  } catch (err) {
    const code = (err as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code;
    return { status: null, models: [], error: signal.aborted ? 'timed out' : typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code) ? code : 'unreachable', ms: ms() };
  } finally {
    clearTimeout(timer);
  }
}

export class ModelCatalog {
  private readonly lists = new Map<Upstream, { at: number; ttl: number; models: string[]; pending: Promise<string[]> | null }>();

  constructor(private readonly router: UpstreamRouter) {}

  /** Every model an upstream serves, sorted, each with the first upstream that serves it. */
  async models(): Promise<ListedModel[]> {
    const found = new Map<string, string>();
    const lists = await Promise.all(this.router.upstreams.map(async (u) => ({ u, listed: u.hasGlobs ? await this.listOf(u) : [] })));
    for (const { u, listed } of lists) {
      for (const id of [...u.namedModels(), ...listed.filter((m) => u.servesListed(m))]) {
        // Named in order of the file: the first upstream that serves a model is its owner.
        const owner = this.router.route(id)?.candidates[0]?.upstream.name ?? u.name;
        if (!found.has(id)) found.set(id, owner);
      }
    }
    return [...found].map(([id, upstream]) => ({ id, upstream })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private listOf(upstream: Upstream): Promise<string[]> {
    const now = this.router.policy.clock();
    const cached = this.lists.get(upstream);
    if (cached !== undefined && (cached.pending !== null || now - cached.at < cached.ttl)) return cached.pending ?? Promise.resolve(cached.models);
    const entry = { at: now, ttl: LIST_TTL_MS, models: cached?.models ?? [], pending: null as Promise<string[]> | null };
    entry.pending = probeModels(upstream, now).then((result) => {
      entry.pending = null;
      entry.at = this.router.policy.clock();
      if (result.error === null) entry.models = result.models;
      else entry.ttl = FAILED_TTL_MS;
      return entry.models;
    });
    this.lists.set(upstream, entry);
    return entry.pending;
  }
}
