/**
 * One proxied call, as one object: created once a request has passed auth and policy, it owns
 * the principal, the inspected body, the admission (what the limiter reserved), the upstream's
 * response and the settlement, and its steps are its methods: reserve → forward → (meter, by a
 * responder: relay.ts, or the legacy route) → settle. The recorder waits on `settled`.
 *
 * Settled exactly once, on every path after admission: a refused reservation, an upstream that
 * failed or timed out, a client that left before the answer or during it, a body that broke, an
 * error thrown anywhere on the way. `settle()` is the one place that counts a call; it is guarded
 * (the first outcome wins, later calls return the same promise) and never rejects, and `run()`
 * settles whatever a step threw, so a step can settle early but never leave a call unsettled.
 *
 * With its route (the upstreams that serve its model), `forward()` is where the attempts happen
 * (upstreams/failover.ts): however many upstreams and keys a call tries, it is reserved once,
 * before the first, and settled once, after the answer it keeps, priced as its upstream charges.
 */
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { Principal } from '../auth/authenticator.js';
import { ApiError } from '../errors.js';
import type { Admission, CallLimits } from '../limits/call-limits.js';
import { countUsage, estimateUsage } from '../metering/estimate.js';
import type { TokenUsage } from '../contract.js';
import { CallSignal, ClientGoneError, upstreamBodyFailure, type UpstreamPool, type UpstreamRequest, type UpstreamResponse } from '../proxy/forward.js';
import type { Redactor } from '../redact.js';
import { sendWithFailover } from '../upstreams/failover.js';
import type { Candidate, Route } from '../upstreams/route.js';
import { upstreamBody, type CallBody } from './inspect.js';

/** What every call of this gateway shares: limits, upstream pool, redactor, defaults. */
export interface CallContext {
  readonly limits: CallLimits;
  /** Where a call without a route goes (the first upstream). */
  readonly pool: UpstreamPool;
  /** Upstream error bodies go to the client: none of our secrets may ride along. */
  readonly redactor: Redactor;
  /** The completion budget a key with token or spend limits reserves (and is capped at) when it names none. */
  readonly defaultMaxTokens: number;
}

/** How a call ended, for billing: the usage the upstream reported, or what to count instead. */
export interface CallOutcome {
  /** Usage the upstream reported; null when it reported none. */
  reported: TokenUsage | null;
  /**
   * When none was reported: the completion text the client got, to count with the prompt (the
   * tokenizer); null bills nothing (the upstream failed, or answered an error).
   */
  delivered: string | null;
}

/** The upstream failed or refused: nothing to bill. */
export const BILL_NOTHING: CallOutcome = Object.freeze({ reported: null, delivered: null });
/** The upstream has the prompt but nothing (more) was delivered: bill the prompt. */
export const BILL_PROMPT: CallOutcome = Object.freeze({ reported: null, delivered: '' });

/** What a settled call cost (null for a call that reserved nothing: refused, or the limiter failed). */
export interface CallSettlement {
  usage: TokenUsage;
  costMicroUsd: number;
  /** Counted with the tokenizer, not reported by the upstream. */
  estimated: boolean;
}

/** Meters an upstream answer into the reply, settling the call once the answer is over. */
export type Responder = (call: ProxyCall, reply: FastifyReply, response: UpstreamResponse) => Promise<FastifyReply>;

const NO_USAGE: TokenUsage = Object.freeze({ promptTokens: 0, completionTokens: 0, cachedTokens: 0 });

const isOk = (status: number): boolean => status >= 200 && status < 300;

export class ProxyCall {
  /** What the limiter reserved; null until `reserve()` succeeded. */
  admission: Admission | null = null;
  /** The upstream's answer (status, headers, body stream); null until it came. */
  response: UpstreamResponse | null = null;
  /** Milliseconds from sending the call upstream to its response headers; null until they came. */
  upstreamMs: number | null = null;
  /** What the call cost, once settled. */
  settlement: CallSettlement | null = null;
  /** Drop the usage-only stream chunk the gateway asked for on the client's behalf. */
  stripUsageChunk = false;
  private readonly usageLimited: boolean;
  private settling: Promise<void> | null = null;
  private done = false;
  private settledPromise: Promise<CallSettlement | null> | null = null;
  private resolveSettled: ((settlement: CallSettlement | null) => void) | null = null;
  /** The upstream request's abort signal, once it is sent. */
  private signal: CallSignal | null = null;
  /** How the responder ends its answer early (a stream's last event); null: it cannot. */
  private interruptAnswer: ((err: ApiError) => void) | null = null;
  /** Set once the gateway cut the call short (it is stopping). */
  interrupted: ApiError | null = null;
  /** The upstream whose answer the call kept; null until one answered (or with no route). */
  served: Candidate | null = null;

  constructor(
    readonly context: CallContext,
    readonly principal: Principal,
    readonly body: CallBody,
    private readonly log: FastifyBaseLogger,
    /** The upstreams that serve the body's model; null: the context's pool, one attempt. */
    readonly route: Route | null = null,
  ) {
    this.usageLimited = body.json !== null && context.limits.needsUsageEstimate(principal);
  }

  /** Whether the caller has token or spend limits and the body can be estimated for them. */
  needsUsageEstimate(): boolean {
    return this.usageLimited;
  }

  /** The completion cap the gateway must send when the request names none; null: no cap needed. */
  completionCap(): number | null {
    return this.usageLimited ? this.context.defaultMaxTokens : null;
  }

  /** Step: reserve in every applicable window, or throw the 429 (the call is then settled as refused). */
  async reserve(): Promise<void> {
    try {
      const estimate = this.usageLimited ? estimateUsage(this.body.json, this.context.defaultMaxTokens) : null;
      // Priced as the dearest upstream it may go to: a failover never costs more than was reserved.
      this.admission = await this.context.limits.reserve(this.principal, this.body.model, estimate, this.route?.prices);
    } catch (err) {
      void this.settle(BILL_NOTHING);
      throw err;
    }
  }

  /**
   * The call's steps in order: reserve (429 when it does not fit), forward `request` upstream,
   * then let `respond` meter the answer into the reply, settling when the answer is over. A client
   * that left before the answer gets a 499 (nobody reads it). Anything thrown after admission
   * settles the call as failed (a no-op if the failing step settled it already: the first outcome
   * wins) and reaches the client with the rate-limit headers.
   */
  async run(reply: FastifyReply, request: Omit<UpstreamRequest, 'signal'>, respond: Responder): Promise<FastifyReply> {
    await this.reserve();
    try {
      const response = await this.forward(request, reply);
      if (response === null) return reply.code(499).send();
      return await respond(this, reply, response);
    } catch (thrown) {
      // An answer nobody will read any more must not hold its upstream connection: dump() drops
      // the rest (cut past 128 KiB) without an error event of its own (destroy() would raise one).
      void this.response?.body.dump();
      await this.settle(this.failure());
      // A body that timed out or broke off while being read: 504 or 502, as before the headers.
      const err = this.response !== null && !(thrown instanceof ApiError) ? upstreamBodyFailure(thrown) : thrown;
      throw err instanceof ApiError && this.admission !== null ? err.withHeaders(this.admission.headers) : err;
    }
  }

  /**
   * Step: sends the call upstream (the client's body, with what the gateway must add: see
   * upstreamBody), aborting it if the client leaves first. Returns null when the client left:
   * before the call was sent (nothing is billed) or while the upstream was working on it (the
   * upstream has the prompt: it is billed). Upstream failures are thrown (502, 504).
   */
  async forward(request: Omit<UpstreamRequest, 'signal'>, reply: FastifyReply): Promise<UpstreamResponse | null> {
    const res = reply.raw;
    if (res.destroyed) {
      void this.settle(BILL_NOTHING);
      return null;
    }
    const cap = this.completionCap();
    const bodyFor = (model: string | null) => {
      const { body, strip } = upstreamBody(request.path, this.body, request.body, cap, model);
      this.stripUsageChunk = strip;
      return body;
    };
    const signal = (this.signal = new CallSignal());
    // `on`, not `once` (a response closes once): no wrapper kept per open call.
    res.on('close', () => {
      if (!res.writableFinished) signal.abort();
    });
    if (this.interrupted !== null) signal.abort(this.interrupted);
    try {
      const sentAt = performance.now();
      if (this.route === null) {
        this.response = await this.context.pool.send({ ...request, body: bodyFor(null), signal });
      } else {
        const served = await sendWithFailover(this.route, { ...request, body: (candidate) => bodyFor(candidate.model) }, signal, this.log);
        this.served = served.candidate;
        this.response = served.response;
      }
      this.upstreamMs = performance.now() - sentAt;
      return this.response;
    } catch (err) {
      // Cut short by the gateway: the upstream may have the prompt, as when the client leaves.
      if (err === this.interrupted && err !== null) void this.settle(BILL_PROMPT);
      if (!(err instanceof ClientGoneError)) throw err;
      void this.settle(BILL_PROMPT);
      return null;
    }
  }

  /** For a responder: how to end its answer early with `err` (a stream's closing error event). */
  onInterrupt(end: (err: ApiError) => void): void {
    this.interruptAnswer = end;
  }

  /**
   * Cuts the call short with `err` (the gateway is stopping): a stream ends with `err` as its last
   * event, an answer still awaited or being read is abandoned and the client gets `err`. The call
   * settles as its path says (what was delivered, or the prompt). No-op once settled.
   */
  interrupt(err: ApiError): void {
    if (this.done || this.interrupted !== null) return;
    this.interrupted = err;
    if (this.interruptAnswer !== null) this.interruptAnswer(err);
    else if (this.response !== null) this.response.body.destroy(err);
    else this.signal?.abort(err);
  }

  /**
   * Step: settles the call with `outcome` (the first outcome wins; later calls return the first
   * one's promise). Counts the prompt and delivered text with the tokenizer when the upstream
   * reported no usage, settles the limiter, and resolves `settled`. Never rejects.
   */
  settle(outcome: CallOutcome): Promise<void> {
    return (this.settling ??= this.commit(outcome));
  }

  /** Resolves with the settlement once the call is settled (at once if it is already). Never rejects. */
  get settled(): Promise<CallSettlement | null> {
    this.settledPromise ??= this.done
      ? Promise.resolve(this.settlement)
      : new Promise((resolve) => {
          this.resolveSettled = resolve;
        });
    return this.settledPromise;
  }

  get isSettled(): boolean {
    return this.done;
  }

  /** Whether the call is relaying an upstream event stream (SSE) that has not ended yet. */
  get isStreaming(): boolean {
    const response = this.response;
    return !this.done && response !== null && isOk(response.statusCode) && String(response.headers['content-type'] ?? '').includes('text/event-stream');
  }

  /** The name of the upstream whose answer the call kept (for its usage record); null when none answered. */
  get upstream(): string | null {
    return this.served?.upstream.name ?? null;
  }

  /** What a call that failed after admission is billed: its prompt if the upstream accepted it. */
  private failure(): CallOutcome {
    return this.response !== null && isOk(this.response.statusCode) ? BILL_PROMPT : BILL_NOTHING;
  }

  private async commit(outcome: CallOutcome): Promise<void> {
    const admission = this.admission;
    let settlement: CallSettlement | null = null;
    if (admission !== null) {
      try {
        let usage = outcome.reported;
        if (usage?.clamped !== undefined) {
          // Names and reasons only: a count sent as text could hold anything.
          this.log.warn({ fields: usage.clamped, model: this.body.model }, 'the upstream reported token counts out of range; recorded them clamped');
        }
        let estimated = false;
        if (usage === null && outcome.delivered !== null && this.body.json !== null) {
          usage = await countUsage(this.body.json, outcome.delivered);
          estimated = true;
        }
        const costMicroUsd = await this.context.limits.settle(admission, this.response?.statusCode ?? null, usage, this.served?.price ?? null);
        settlement = { usage: usage ?? NO_USAGE, costMicroUsd, estimated };
      } catch (err) {
        this.log.error({ err }, 'settling a call failed');
        // Whatever it holds must not stay held until the hold expires: drop it, uncounted.
        try {
          await this.context.limits.release(admission);
        } catch (releaseErr) {
          this.log.error({ err: releaseErr }, 'releasing a call that failed to settle failed too');
        }
      }
    }
    this.settlement = settlement;
    this.done = true;
    this.resolveSettled?.(settlement);
  }
}
