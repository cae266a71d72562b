/**
 * What the gateway knows about its upstreams once configuration is read: each upstream's kind,
 * address, keys, the models it serves (with renames or Azure deployments), its weight, timeout,
 * prices and circuit-breaker settings, and how many attempts one call may make. Built from the
 * upstreams file (file.ts) or, without one, from OPENAI_API_KEY / OPENAI_BASE_URL (one upstream,
 * every model, no failover: the gateway as it always was). Types and that default only.
 */
import type { ModelPrice } from '../contract.js';

export type UpstreamKind = 'openai' | 'azure' | 'openai-compatible';

/** One entry of an upstream's `models`: which client models it serves, and under what name. */
export interface ModelRoute {
  /** The client's model name, or a glob of names (`gpt-4o*`); `*` is every model. */
  pattern: string;
  /** The model name sent upstream in the body; null: the client's, unchanged. */
  model: string | null;
  /** Azure only: the deployment in the path; null: the model's name (after any rename). */
  deployment: string | null;
}

export interface UpstreamKey {
  secret: string;
  /** Share of this upstream's calls, relative to its other keys. */
  weight: number;
  /** The environment variable the key was read from (shown instead of the key). */
  source: string;
}

export interface BreakerSettings {
  /** Consecutive failures of one key that open its breaker; 0: never opens. */
  failures: number;
  /** How long an open breaker stays open before one probe call is let through. */
  cooldownMs: number;
  /** Whether a key answered 429 sits out the upstream's Retry-After (false: it stays in turn, as without an upstreams file). */
  sitOutRateLimits: boolean;
}

export interface UpstreamSpec {
  /** Unique; named in usage records, logs and the admin API. */
  name: string;
  kind: UpstreamKind;
  /** Without a trailing slash, query or credentials (`https://api.openai.com/v1`, `https://res.openai.azure.com`). */
  baseUrl: URL;
  /** Empty only for an openai-compatible server that takes no key (a local model). */
  keys: UpstreamKey[];
  /** Azure's `api-version` query parameter; null for the other kinds. */
  apiVersion: string | null;
  models: ModelRoute[];
  /** Share of the calls for a model, relative to the other upstreams that serve it. */
  weight: number;
  /** Wait for response headers (and between body chunks); null: PROXYGPT_UPSTREAM_TIMEOUT_MS. */
  timeoutMs: number | null;
  /** USD per million tokens by model name or glob, replacing the gateway's price table; null: none. */
  prices: Record<string, ModelPrice> | null;
  breaker: BreakerSettings;
}

export interface UpstreamsConfig {
  /** The upstreams file's path, or null for the single upstream of OPENAI_API_KEY / OPENAI_BASE_URL. */
  file: string | null;
  /** In the file's order; the first serves requests that name no model. */
  upstreams: UpstreamSpec[];
  /** Most attempts one call makes across its upstreams and keys (1: no failover). */
  attempts: number;
}

/** Every model, as the pattern of the single default upstream and of `models: ["*"]`. */
export const EVERY_MODEL = '*';

/** The default without an upstreams file: OPENAI_BASE_URL with OPENAI_API_KEY, for every model, no failover, no breaker. */
export function singleUpstream(baseUrl: URL, apiKey: string): UpstreamsConfig {
  return {
    file: null,
    attempts: 1,
    upstreams: [
      {
        name: 'default',
        kind: 'openai',
        baseUrl,
        keys: [{ secret: apiKey, weight: 1, source: 'OPENAI_API_KEY' }],
        apiVersion: null,
        models: [{ pattern: EVERY_MODEL, model: null, deployment: null }],
        weight: 1,
        timeoutMs: null,
        prices: null,
        breaker: { failures: 0, cooldownMs: 0, sitOutRateLimits: false },
      },
    ],
  };
}
