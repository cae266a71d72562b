/**
 * Counters and histograms the request path updates with plain arithmetic: a series is an object
 * holding its numbers, found once per label combination and kept by the caller, so recording a
 * call costs a few additions (no label hashing, no string building, no allocation). prom-client
 * formats them and aggregates them across cluster workers: each family is a metric in its
 * registry whose `get()` answers in the shape of `Registry.getMetricsAsJSON()` (the shape
 * `AggregatorRegistry.aggregate` consumes), built only when /metrics is read. prom-client's own
 * `labels(...).inc()` hashes the label values on every call, about 0.5 µs per histogram update.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** One entry of `Registry.getMetricsAsJSON()`. */
interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: MetricValue[];
}

/** What prom-client reads of a metric. */
interface CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<MetricJson>;
  reset(): void;
}

/** Adds a family to `registry` (prom-client takes any object with a metric's shape). */
export function registerCollected(registry: Registry, metric: CollectedMetric): void {
  registry.registerMetric(metric as unknown as Metric);
}

export class CounterSeries {
  /** In the family's counted unit (micro-dollars for the cost: see `divisor`). */
  value = 0;
  constructor(readonly labels: Labels) {}
}

/** A counter family. `divisor` turns the counted unit into the exposed one (1e6: micro-dollars to dollars). */
export class CounterFamily implements CollectedMetric {
  readonly type: 'counter' = 'counter';
  readonly aggregator: 'sum' = 'sum';
  private readonly all: CounterSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly divisor = 1,
  ) {}

  /** A new series with these labels; the caller keeps it (one per label combination). */
  series(labels: Labels): CounterSeries {
    const series = new CounterSeries(labels);
    this.all.push(series);
    return series;
  }

  async get(): Promise<MetricJson> {
    const values = this.all.map((s) => ({ labels: { ...s.labels }, value: this.divisor === 1 ? s.value : s.value / this.divisor }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const series of this.all) series.value = 0;
  }
}

export class HistogramSeries {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one: above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class HistogramFamily implements CollectedMetric {
  readonly type: 'histogram' = 'histogram';
  readonly aggregator: 'sum' = 'sum';
  private readonly all: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds of the buckets, ascending (`+Inf` is implied). */
    readonly bounds: readonly number[],
  ) {}

  series(labels: Labels): HistogramSeries {
    const series = new HistogramSeries(labels, this.bounds);
    this.all.push(series);
    return series;
  }

  async get(): Promise<MetricJson> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.all) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { ...s.labels, le: bound }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
