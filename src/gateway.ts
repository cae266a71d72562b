/**
 * The request path's shared parts, built once per process from an options object: the access
 * rules, the call limits, the upstreams (router), the redactor and the default completion budget.
 * `open()` is the policy step for a body (may this caller use this model; which upstreams serve
 * it: none is a 404, all of them out for now a 429 or 503, before anything is reserved) and
 * creates the call that does the rest: reserve → forward → meter → settle (call/proxy-call.ts).
 * Auth comes before (http/require-proxy-key.ts), the record after (http/call-record.ts). A call
 * refused there for its upstreams (none is a call, so it gets no usage record) is told to
 * `onRefused`, for the dashboard's counts of 429s and upstream errors.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from './auth/authenticator.js';
import { checkBudgetFields, type CallBody } from './call/inspect.js';
import { ProxyCall, type CallContext } from './call/proxy-call.js';
import type { CallLimits } from './limits/call-limits.js';
import type { Access } from './policy/access.js';
import type { UpstreamPool } from './proxy/forward.js';
import type { Redactor } from './redact.js';
import { modelNotFound, upstreamsUnavailable, type ApiError } from './errors.js';
import type { UpstreamRouter } from './upstreams/router.js';
import type { RefusalRecord } from './contract.js';

export interface GatewayOptions {
  access: Access;
  limits: CallLimits;
  /** The upstreams and the routes to them by model. */
  upstreams: UpstreamRouter;
  /** The first upstream's pool (where a call without a route would go). */
  pool: UpstreamPool;
  redactor: Redactor;
  /** The completion budget a key with token or spend limits reserves when a request names none. */
  defaultMaxTokens: number;
  /** Told of each call refused before it was opened because every upstream that serves it is out (429 or 503). */
  onRefused?: (refusal: RefusalRecord) => void;
}

export class Gateway implements CallContext {
  /** Calls opened and not yet settled. */
  private readonly calls = new Set<ProxyCall>();
  readonly access: Access;
  readonly limits: CallLimits;
  readonly upstreams: UpstreamRouter;
  readonly pool: UpstreamPool;
  readonly redactor: Redactor;
  readonly defaultMaxTokens: number;
  private readonly onRefused: ((refusal: RefusalRecord) => void) | undefined;

  constructor(options: GatewayOptions) {
    this.onRefused = options.onRefused;
    this.access = options.access;
    this.limits = options.limits;
    this.upstreams = options.upstreams;
    this.pool = options.pool;
    this.redactor = options.redactor;
    this.defaultMaxTokens = options.defaultMaxTokens;
  }

  /**
   * Checks the body's model against the caller's policy (403) and the upstreams (404: none
   * serves it; 429 or 503: every one that does is out for now), for a caller with token or spend
   * limits the numbers its reservation is computed from (400), then opens its call.
   */
  open(principal: Principal, body: CallBody, log: FastifyBaseLogger): ProxyCall {
    this.access.checkModel(principal, body.model);
    const route = this.upstreams.route(body.model);
    if (route === null) throw modelNotFound(body.model!);
    if (body.json !== null && this.limits.needsUsageEstimate(principal)) checkBudgetFields(body.json);
    const now = route.policy.clock();
    const availableAt = route.availableAt(now);
    if (availableAt > now) {
      const refused = upstreamsUnavailable(availableAt - now, route.onlyRateLimited(now));
      this.onRefused?.({ ts: now, principal: principal.id, model: body.model, status: refused.statusCode });
      throw refused;
    }
    const call = new ProxyCall(this, principal, body, log, route);
    this.calls.add(call);
    void call.settled.then(() => this.calls.delete(call));
    return call;
  }

  /** How many calls are open (admitted or being admitted, not yet settled). */
  get openCalls(): number {
    return this.calls.size;
  }

  /** How many open calls are relaying an event stream (SSE) to their client. */
  get openStreams(): number {
    let streams = 0;
    for (const call of this.calls) if (call.isStreaming) streams++;
    return streams;
  }

  /** Resolves once every open call is settled. */
  async allSettled(): Promise<void> {
    await Promise.all([...this.calls].map((call) => call.settled));
  }

  /** Cuts every open call short with `err` (see ProxyCall.interrupt); they then settle. */
  interruptAll(err: ApiError): void {
    for (const call of this.calls) call.interrupt(err);
  }
}
