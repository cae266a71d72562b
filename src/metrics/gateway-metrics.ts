/**
 * The gateway's Prometheus metrics in one process: what each proxied call did (counted once it is
 * over and settled, from the same facts as its usage record: key name, endpoint, model, status,
 * duration, tokens, cost), which limits refused calls, and how many calls and streams are open.
 * Labels are bounded: the key's name (env keys: `env-key-N`; never a secret), the route's rule
 * (`POST /v1/chat/completions`, `GET /v1/models/*`: never a path a client typed), the model from
 * a known set (model-labels.ts), the status as text. The series of each label combination is
 * found through nested maps and kept, so recording a call is a few map reads and additions.
 */
import type { FastifyRequest } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import type { CallSettlement, ProxyCall } from '../call/proxy-call.js';
import type { CallObserver } from '../http/call-record.js';
import { CounterFamily, HistogramFamily, registerCollected, type CounterSeries, type HistogramSeries } from './collected.js';
import type { ModelLabels } from './model-labels.js';
import { processMetrics } from './process-metrics.js';

/** Seconds: model calls take from milliseconds (embeddings) to minutes (long streams). */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What the gauges read when /metrics is scraped (the Gateway). */
export interface OpenCalls {
  readonly openCalls: number;
  readonly openStreams: number;
}

interface EndpointSeries {
  label: string;
  duration: HistogramSeries;
  upstream: HistogramSeries;
}

interface KeyModelSeries {
  key: string;
  model: string;
  /** By endpoint label, then status. */
  requests: Map<string, Map<number, CounterSeries>>;
  /** Made with the first settled call (a key refused every time has no token or cost series). */
  billed: { prompt: CounterSeries; completion: CounterSeries; usd: CounterSeries } | null;
}

export class GatewayMetrics implements CallObserver {
  /** This gateway's metrics and the process's default ones. */
  readonly registry: Registry;
  private readonly requests = new CounterFamily('proxygpt_requests_total', 'Proxied calls, by key name, endpoint, model and status (429s and clients gone, 499, included).');
  private readonly duration = new HistogramFamily('proxygpt_request_duration_seconds', 'Duration of proxied calls, from the request to the end of the answer (streams: to their last event).', DURATION_BUCKETS);
  private readonly upstream = new HistogramFamily('proxygpt_upstream_duration_seconds', "Time from sending a call upstream to the upstream's response headers.", DURATION_BUCKETS);
  private readonly tokens = new CounterFamily('proxygpt_tokens_total', 'Tokens billed, by key name, model and type (prompt or completion).');
  private readonly cost = new CounterFamily('proxygpt_cost_usd_total', 'USD billed, by key name and model.', 1e6);
  private readonly rateLimited = new CounterFamily('proxygpt_rate_limited_total', 'Calls refused with 429, by the limit that refused them.');
  /** Route URL → method → series. */
  private readonly endpoints = new Map<string, Map<string, EndpointSeries>>();
  /** Key name → model label → series. */
  private readonly keys = new Map<string, Map<string, KeyModelSeries>>();
  private readonly refusals = new Map<string, CounterSeries>();
  private open: OpenCalls | null = null;

  constructor(private readonly models: ModelLabels) {
    const own = new Registry();
    for (const family of [this.requests, this.duration, this.upstream, this.tokens, this.cost, this.rateLimited]) registerCollected(own, family);
    const metrics = this;
    new Gauge({
      name: 'proxygpt_inflight_requests',
      help: 'Proxied calls admitted or being admitted and not yet settled (open streams included).',
      registers: [own],
      collect() {
        this.set(metrics.open?.openCalls ?? 0);
      },
    });
    new Gauge({
      name: 'proxygpt_open_streams',
      help: 'Event streams (SSE) being relayed to clients.',
      registers: [own],
      collect() {
        this.set(metrics.open?.openStreams ?? 0);
      },
    });
    this.registry = Registry.merge([processMetrics(), own]);
  }

  /** Where the gauges read the open calls and streams from. */
  watch(open: OpenCalls): void {
    this.open = open;
  }

  /** A call refused with 429 by the limit named `rule` (`hourly`, `key_tokens_per_day`, `key_concurrent`, …). */
  readonly refused = (rule: string): void => {
    let series = this.refusals.get(rule);
    if (series === undefined) this.refusals.set(rule, (series = this.rateLimited.series({ limit: rule })));
    series.value++;
  };

  callEnded(request: FastifyRequest, call: ProxyCall, status: number, elapsedMs: number, settlement: CallSettlement | null): void {
    const endpoint = this.endpoint(request.method, request.routeOptions.url ?? 'unknown');
    endpoint.duration.observe(elapsedMs / 1000);
    if (call.upstreamMs !== null) endpoint.upstream.observe(call.upstreamMs / 1000);
    const modelLabel = this.models.labelOf(call.body.model);
    const model = this.keyModel(call.principal.name, modelLabel);
    let byStatus = model.requests.get(endpoint.label);
    if (byStatus === undefined) model.requests.set(endpoint.label, (byStatus = new Map()));
    let requests = byStatus.get(status);
    if (requests === undefined) {
      byStatus.set(status, (requests = this.requests.series({ key: call.principal.name, endpoint: endpoint.label, model: modelLabel, status: String(status) })));
    }
    requests.value++;
    if (settlement !== null) {
      const billed = (model.billed ??= this.billedSeries(model.key, model.model));
      billed.prompt.value += settlement.usage.promptTokens;
      billed.completion.value += settlement.usage.completionTokens;
      billed.usd.value += settlement.costMicroUsd;
    }
  }

  private endpoint(method: string, url: string): EndpointSeries {
    let byMethod = this.endpoints.get(url);
    if (byMethod === undefined) this.endpoints.set(url, (byMethod = new Map()));
    let series = byMethod.get(method);
    if (series === undefined) {
      const label = `${method} ${url}`;
      series = { label, duration: this.duration.series({ endpoint: label }), upstream: this.upstream.series({ endpoint: label }) };
      byMethod.set(method, series);
    }
    return series;
  }

  private keyModel(key: string, model: string): KeyModelSeries {
    let byModel = this.keys.get(key);
    if (byModel === undefined) this.keys.set(key, (byModel = new Map()));
    let series = byModel.get(model);
    if (series === undefined) byModel.set(model, (series = { key, model, requests: new Map(), billed: null }));
    return series;
  }

  private billedSeries(key: string, model: string): NonNullable<KeyModelSeries['billed']> {
    return {
      prompt: this.tokens.series({ key, model, type: 'prompt' }),
      completion: this.tokens.series({ key, model, type: 'completion' }),
      usd: this.cost.series({ key, model }),
    };
  }
}
