/**
 * The attempts of one call: sends it to the route's next upstream and key, and moves it on to
 * the next candidate when the upstream could not be reached (502, 504), answered 5xx or 401 (its
 * key is bad), or 429: within the retry budget (the route's `attempts`) and never past the call's
 * own timeout. A failure decides nothing for the client's answer until the last attempt: an
 * answer that is failed over is dropped unread, the last one (a 429, a 5xx) is what the client
 * gets, as it came. Each attempt tells its key's health how it went (every attempt, not only the
 * first), so breakers open and close on what really happened. Failover happens before the
 * answer's headers only: once an upstream has answered 2xx the call stays there (a stream that
 * breaks later ends with an error event; it is never started again elsewhere).
 */
import { ApiError, upstreamsUnavailable } from '../errors.js';
import type { CallSignal, UpstreamRequest, UpstreamResponse } from '../proxy/forward.js';
import type { Candidate, Pick, Route, Tried } from './route.js';

/** A call to send: as for the upstream pool, with the body made per candidate (renamed models). */
export interface AttemptPlan extends Omit<UpstreamRequest, 'signal' | 'body' | 'apiKey' | 'headersTimeoutMs'> {
  body(candidate: Candidate): Buffer | string | null;
}

/** The answer a call keeps, and where it came from. */
export interface Served {
  response: UpstreamResponse;
  candidate: Candidate;
  /** How many attempts it took (1: the first upstream answered). */
  attempts: number;
}

export interface AttemptLog {
  warn(details: Record<string, unknown>, message: string): void;
}

/** Longest a key sits out a 429, whatever the upstream's Retry-After says. */
export const MAX_RATE_LIMIT_WAIT_MS = 10 * 60_000;
/** How long a key sits out a 429 that names no Retry-After. */
export const DEFAULT_RATE_LIMIT_WAIT_MS = 1_000;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The wait a 429 (or 503) asks for: `retry-after-ms`, else `retry-after` in seconds or as an HTTP date; null when none. */
export function retryAfterMs(headers: UpstreamResponse['headers'], now: number): number | null {
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Number(ms.trim());
  const after = first(headers['retry-after'])?.trim();
  if (after === undefined || after === '') return null;
  if (/^\d+(\.\d+)?$/.test(after)) return Number(after) * 1000;
  const date = Date.parse(after);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

type Verdict = 'keep' | 'rate-limited' | 'failed';

/** What an answer's status says about the key: kept (the request's own answer), rate limited, or failed (5xx, 401). */
function verdictOf(status: number): Verdict {
  if (status === 429) return 'rate-limited';
  if (status >= 500 || status === 401) return 'failed';
  return 'keep';
}

/** A transport failure (no answer at all, or none in time): the upstream itself is out of reach. */
const isUnreachable = (err: unknown): err is ApiError => err instanceof ApiError && (err.code === 'upstream_unreachable' || err.code === 'upstream_timeout');

/** An error code safe to show (undici's and the socket's are upper-case words), else nothing. */
function codeOf(err: ApiError): string {
  const cause = (err.cause as { code?: unknown } | undefined)?.code;
  return typeof cause === 'string' && /^[A-Z0-9_]{1,40}$/.test(cause) ? `${err.code} (${cause})` : String(err.code);
}

/**
 * Sends `plan` along `route` until an answer is kept or the budget is spent. Resolves with the
 * answer to relay (which may be the last failure's); rejects with the last transport failure when
 * no upstream answered, or with 429/503 when no candidate is available at all. A client gone or
 * a call interrupted rejects at once (the signal's reason), the attempt's key left undecided.
 */
export async function sendWithFailover(route: Route, plan: AttemptPlan, signal: CallSignal, log: AttemptLog): Promise<Served> {
  const { attempts: budget, callTimeoutMs, clock } = route.policy;
  const deadline = performance.now() + callTimeoutMs;
  const tried: Tried = { keys: new Set(), upstreams: new Set() };
  let pick = route.pick(tried);
  if (pick === null) {
    const now = clock();
    throw upstreamsUnavailable(route.availableAt(now) - now, route.onlyRateLimited(now));
  }
  let lastError: ApiError | null = null;
  for (let attempt = 1; ; attempt++) {
    const { candidate, key, probe }: Pick = pick;
    const upstream = candidate.upstream;
    tried.keys.add(key);
    // The first attempt may take the call's whole time, a later one what is left of it; each at most its upstream's own timeout.
    const limit = attempt === 1 ? callTimeoutMs : deadline - performance.now();
    const { path, search } = upstream.address(plan.path, plan.search, candidate.deployment);
    let response: UpstreamResponse;
    try {
      response = await upstream.pool.send({
        method: plan.method,
        path,
        search,
        headers: plan.headers,
        body: plan.body(candidate),
        signal,
        apiKey: key.secret,
        ...(limit < upstream.timeoutMs ? { headersTimeoutMs: Math.max(1, Math.floor(limit)) } : {}),
      });
    } catch (err) {
      if (signal.aborted || !isUnreachable(err)) {
        key.health.abandoned(probe);
        throw err;
      }
      key.health.failed(clock(), codeOf(err), probe);
      tried.upstreams.add(upstream); // no answer: its other keys would get none either
      lastError = err;
      const next = attempt < budget && deadline - performance.now() >= 1 ? route.pick(tried) : null;
      if (budget > 1) log.warn({ upstream: upstream.name, key: key.hint, attempt, error: codeOf(err), next: next?.candidate.upstream.name ?? null }, 'upstream attempt failed');
      if (next === null) throw lastError;
      pick = next;
      continue;
    }

    const verdict = verdictOf(response.statusCode);
    if (verdict === 'keep') {
      key.health.succeeded(probe);
      return { response, candidate, attempts: attempt };
    }
    const now = clock();
    const wait = retryAfterMs(response.headers, now);
    if (verdict === 'rate-limited') {
      key.health.rateLimited(now, Math.min(MAX_RATE_LIMIT_WAIT_MS, wait ?? DEFAULT_RATE_LIMIT_WAIT_MS), `HTTP ${response.statusCode}`, probe);
    } else {
      key.health.failed(now, `HTTP ${response.statusCode}`, probe);
    }
    const next = attempt < budget && deadline - performance.now() >= 1 && !signal.aborted ? route.pick(tried) : null;
    if (budget > 1) log.warn({ upstream: upstream.name, key: key.hint, attempt, status: response.statusCode, next: next?.candidate.upstream.name ?? null }, 'upstream attempt failed');
    if (next === null) return { response, candidate, attempts: attempt };
    // Not read: dropped (undici reads up to 128 KiB of it to keep the connection, else closes it).
    response.body.dump().catch(() => undefined);
    pick = next;
  }
}
