/**
 * The dashboard's overview of a range, built from the store's rollups (never a scan of usage
 * records): series per step (requests, tokens, USD, 429s, upstream errors, latency p50/p95/p99)
 * in total and per key, and the range's sums per key and per model. Amounts are in the admin
 * API's units: tokens, US dollars (from micro-dollars), milliseconds. The store sums the rows
 * into the window's steps already (`rollupQuery`: RollupQuery.stepMs, in SQL), so a row here is
 * one key's step: it is placed in its key's series and added to the step's total across keys.
 */
import type { RollupQuery, RollupResult, RollupSums } from '../contract.js';
import { addLatency, emptyLatency, percentiles, type Percentiles } from './latency.js';
import type { RangeWindow } from './ranges.js';

export interface SumsView {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  usd: number;
  rate_limited: number;
  upstream_errors: number;
  latency_ms: Percentiles;
}

export interface TotalSeries {
  requests: number[];
  tokens: number[];
  usd: number[];
  rate_limited: number[];
  upstream_errors: number[];
  latency_p50_ms: (number | null)[];
  latency_p95_ms: (number | null)[];
  latency_p99_ms: (number | null)[];
}

export interface KeySeries {
  requests: number[];
  tokens: number[];
  usd: number[];
}

export interface OverviewView {
  range: string;
  since: string;
  until: string;
  granularity: string;
  step_seconds: number;
  /** Each step's start, epoch seconds (the x values of every series). */
  timestamps: number[];
  total: SumsView & { series: TotalSeries };
  by_key: Array<SumsView & { id: string; name: string; series: KeySeries }>;
  by_model: Array<SumsView & { model: string | null }>;
}

const usdOf = (microUsd: number): number => Math.round(microUsd) / 1e6;

/** Running sums of rollup rows (the latency counts merged by adding). */
class Sums {
  requests = 0;
  promptTokens = 0;
  completionTokens = 0;
  costMicroUsd = 0;
  rateLimited = 0;
  upstreamErrors = 0;
  latency = emptyLatency();

  add(row: RollupSums): void {
    this.requests += row.requests;
    this.promptTokens += row.promptTokens;
    this.completionTokens += row.completionTokens;
    this.costMicroUsd += row.costMicroUsd;
    this.rateLimited += row.rateLimited;
    this.upstreamErrors += row.upstreamErrors;
    addLatency(this.latency, row.latency);
  }

  view(): SumsView {
    return {
      requests: this.requests,
      prompt_tokens: this.promptTokens,
      completion_tokens: this.completionTokens,
      total_tokens: this.promptTokens + this.completionTokens,
      usd: usdOf(this.costMicroUsd),
      rate_limited: this.rateLimited,
      upstream_errors: this.upstreamErrors,
      latency_ms: percentiles(this.latency),
    };
  }
}

const byRequests = (a: { requests: number }, b: { requests: number }) => b.requests - a.requests;

/** What to ask the store for `window`: its range and granularity, summed into its steps. */
export function rollupQuery(window: RangeWindow, principal?: string): RollupQuery {
  return { sinceMs: window.sinceMs, untilMs: window.untilMs, granularity: window.granularity, stepMs: window.stepMs, ...(principal === undefined ? {} : { principal }) };
}

/** One key's series, per step (micro-dollars until the view). */
interface KeySteps {
  sums: Sums;
  requests: number[];
  tokens: number[];
  costMicroUsd: number[];
}

/**
 * `rollups` read over `window` (rollupQuery(window): rows per step; rows per bucket land in their
 * step all the same); `nameOf` gives a key's name from its id (ids of deleted keys and
 * environment keys name themselves). Rows outside the window are left out.
 */
export function buildOverview(rollups: RollupResult, window: RangeWindow, nameOf: (id: string) => string): OverviewView {
  const steps = Array.from({ length: window.steps }, () => new Sums());
  const total = new Sums();
  const keys = new Map<string, KeySteps>();
  const zeros = () => new Array<number>(window.steps).fill(0);
  for (const row of rollups.buckets) {
    const step = Math.floor((row.ts - window.sinceMs) / window.stepMs);
    if (step < 0 || step >= window.steps) continue;
    steps[step]!.add(row);
    total.add(row);
    let key = keys.get(row.principal);
    if (key === undefined) keys.set(row.principal, (key = { sums: new Sums(), requests: zeros(), tokens: zeros(), costMicroUsd: zeros() }));
    key.sums.add(row);
    key.requests[step]! += row.requests;
    key.tokens[step]! += row.promptTokens + row.completionTokens;
    key.costMicroUsd[step]! += row.costMicroUsd;
  }
  const tokensOf = (s: Sums) => s.promptTokens + s.completionTokens;
  const stepViews = steps.map((s) => ({ sums: s, latency: percentiles(s.latency) }));
  const models = rollups.byModel.map((row) => {
    const sums = new Sums();
    sums.add(row);
    return { model: row.model, ...sums.view() };
  });
  return {
    range: window.name,
    since: new Date(window.sinceMs).toISOString(),
    until: new Date(window.untilMs).toISOString(),
    granularity: window.granularity,
    step_seconds: window.stepMs / 1000,
    timestamps: steps.map((_, i) => (window.sinceMs + i * window.stepMs) / 1000),
    total: {
      ...total.view(),
      series: {
        requests: steps.map((s) => s.requests),
        tokens: steps.map(tokensOf),
        usd: steps.map((s) => usdOf(s.costMicroUsd)),
        rate_limited: steps.map((s) => s.rateLimited),
        upstream_errors: steps.map((s) => s.upstreamErrors),
        latency_p50_ms: stepViews.map((s) => s.latency.p50),
        latency_p95_ms: stepViews.map((s) => s.latency.p95),
        latency_p99_ms: stepViews.map((s) => s.latency.p99),
      },
    },
    by_key: [...keys]
      .map(([id, key]) => ({
        id,
        name: nameOf(id),
        ...key.sums.view(),
        series: { requests: key.requests, tokens: key.tokens, usd: key.costMicroUsd.map(usdOf) },
      }))
      .sort(byRequests),
    by_model: models.sort(byRequests),
  };
}
