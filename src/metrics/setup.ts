/**
 * Builds a gateway's metrics from its configuration: whether /metrics is served at all
 * (PROXYGPT_METRICS, and `admin` needs an admin key), the per-process GatewayMetrics with its
 * model labels, and how a scrape is answered: this process's registry, or in a cluster worker
 * the primary's merge of every worker's (cluster.ts).
 */
import { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { PriceBook } from '../metering/price-book.js';
import { WorkerMetrics, type PrimaryLink } from './cluster.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { ModelLabels } from './model-labels.js';

/** Whether /metrics is served: `open`, or `admin` with an admin key to check. */
export function metricsServed(config: Pick<Config, 'metrics' | 'adminKey'>): boolean {
  return config.metrics === 'open' || (config.metrics === 'admin' && config.adminKey !== null);
}

export interface MetricsSetup {
  metrics: GatewayMetrics;
  /** The Prometheus text of this gateway (of all workers in a cluster). */
  scrape(): Promise<string>;
  contentType: string;
  close(): void;
}

/** `primary`: in a cluster worker, the channel to the primary that merges every worker's metrics. */
export function createMetrics(config: Pick<Config, 'allowedModels'>, prices: PriceBook, primary?: PrimaryLink): MetricsSetup {
  const metrics = new GatewayMetrics(new ModelLabels(() => prices.latest, config.allowedModels));
  const worker = primary === undefined ? null : new WorkerMetrics(primary, metrics.registry);
  return {
    metrics,
    scrape: worker === null ? () => metrics.registry.metrics() : () => worker.scrape(),
    contentType: Registry.PROMETHEUS_CONTENT_TYPE,
    close: () => worker?.close(),
  };
}
