/**
 * /metrics with several cluster workers (PROXYGPT_WORKERS > 1): one answer with the figures of
 * every worker. The worker Prometheus reaches asks the primary; the primary asks every worker for
 * its registry as JSON (prom-client's `getMetricsAsJSON`), merges them with prom-client's
 * `AggregatorRegistry.aggregate` (counters, histograms and gauges summed; each default process
 * metric as prom-client says) and sends the text back to the asker.
 *
 * Why not `AggregatorRegistry.clusterMetrics()` itself: it runs on the primary, which serves no
 * HTTP, so a worker has to ask for it anyway; and it asks every connected worker, also one still
 * starting that has not set up prom-client's listener yet (a replaced worker), and then the whole
 * scrape waits 5 s and fails. Here a worker is asked once it has said its metrics are ready, and a
 * worker that exits during a scrape is no longer waited for (its counts left with it). Messages
 * carry `proxygptMetrics`, so they pass by the limiter's (`proxygptLimiter`, limits/cluster.ts).
 */
import { AggregatorRegistry, type Registry } from 'prom-client';

type Message =
  | { proxygptMetrics: 'ready' }
  | { proxygptMetrics: 'scrape'; id: number }
  | { proxygptMetrics: 'collect'; id: number }
  | { proxygptMetrics: 'collected'; id: number; metrics?: object[]; error?: string }
  | { proxygptMetrics: 'text'; id: number; text?: string; error?: string };

const isMessage = (m: unknown): m is Message => typeof (m as Message | null)?.proxygptMetrics === 'string';

/** How long the primary waits for the workers' metrics. */
export const COLLECT_TIMEOUT_MS = 5_000;
/** How long a worker waits for the primary's answer (past the primary's own wait). */
const SCRAPE_TIMEOUT_MS = COLLECT_TIMEOUT_MS + 2_000;

/** A worker's channel to the primary (`process` in a cluster worker). */
export interface PrimaryLink {
  send?(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** Worker side: answers the primary's requests for this worker's metrics, and asks it for everyone's. */
export class WorkerMetrics {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  private readonly listener = (message: unknown) => this.receive(message);

  constructor(
    private readonly link: PrimaryLink,
    private readonly registry: Registry,
  ) {
    link.on('message', this.listener);
    this.send({ proxygptMetrics: 'ready' });
  }

  /** The metrics of every worker, as Prometheus text. */
  scrape(): Promise<string> {
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the cluster primary did not answer within ${SCRAPE_TIMEOUT_MS} ms`));
      }, SCRAPE_TIMEOUT_MS);
      const settle = <T>(done: (value: T) => void) => (value: T) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        done(value);
      };
      this.waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      if (!this.send({ proxygptMetrics: 'scrape', id })) this.waiting.get(id)?.reject(new Error('no IPC channel to the cluster primary'));
    });
  }

  close(): void {
    this.link.off('message', this.listener);
  }

  private send(message: Message): boolean {
    try {
      return this.link.send?.(message) === true;
    } catch {
      return false;
    }
  }

  private receive(message: unknown): void {
    if (!isMessage(message)) return;
    if (message.proxygptMetrics === 'collect') {
      const id = message.id;
      this.registry.getMetricsAsJSON().then(
        (metrics) => this.send({ proxygptMetrics: 'collected', id, metrics }),
        (err: Error) => this.send({ proxygptMetrics: 'collected', id, error: err.message }),
      );
    } else if (message.proxygptMetrics === 'text') {
      const waiter = this.waiting.get(message.id);
      if (message.text !== undefined) waiter?.resolve(message.text);
      else waiter?.reject(new Error(message.error ?? 'the cluster primary sent no metrics'));
    }
  }
}

/** The primary's view of one worker (a cluster `Worker`). */
export interface WorkerLink {
  readonly id: number;
  send(message: unknown): boolean;
  isConnected(): boolean;
}

/** The primary's cluster (`node:cluster`). */
export interface ClusterLink {
  on(event: 'message', listener: (worker: WorkerLink, message: unknown) => void): unknown;
  on(event: 'exit', listener: (worker: WorkerLink) => void): unknown;
}

interface Collection {
  /** Ids of the workers not yet answered. */
  waiting: Set<number>;
  /** Each answered worker's `getMetricsAsJSON()`. */
  results: object[][];
  finish(error?: string): void;
}

/** Primary side: answers every worker's scrape with the metrics of all ready workers. */
export function serveClusterMetrics(cluster: ClusterLink, timeoutMs = COLLECT_TIMEOUT_MS): void {
  const ready = new Map<number, WorkerLink>();
  const collections = new Map<number, Collection>();
  let nextId = 0;

  const answer = (worker: WorkerLink, reply: Message) => {
    if (worker.isConnected()) worker.send(reply);
  };

  const collect = (asker: WorkerLink, scrapeId: number) => {
    const id = nextId++;
    const workers = [...ready.values()].filter((w) => w.isConnected());
    const timer = setTimeout(() => {
      collection.finish(`worker(s) ${[...collection.waiting].join(', ')} did not send their metrics within ${timeoutMs} ms`);
    }, timeoutMs);
    const collection: Collection = {
      waiting: new Set(workers.map((w) => w.id)),
      results: [],
      finish(error) {
        if (!collections.delete(id)) return;
        clearTimeout(timer);
        if (error !== undefined) return answer(asker, { proxygptMetrics: 'text', id: scrapeId, error });
        AggregatorRegistry.aggregate(collection.results)
          .metrics()
          .then(
            (text) => answer(asker, { proxygptMetrics: 'text', id: scrapeId, text }),
            (err: Error) => answer(asker, { proxygptMetrics: 'text', id: scrapeId, error: err.message }),
          );
      },
    };
    collections.set(id, collection);
    for (const worker of workers) worker.send({ proxygptMetrics: 'collect', id } satisfies Message);
    if (workers.length === 0) collection.finish();
  };

  cluster.on('message', (worker, message) => {
    if (!isMessage(message)) return;
    switch (message.proxygptMetrics) {
      case 'ready':
        ready.set(worker.id, worker);
        return;
      case 'scrape':
        return collect(worker, message.id);
      case 'collected': {
        const collection = collections.get(message.id);
        if (collection === undefined || !collection.waiting.delete(worker.id)) return;
        if (message.error !== undefined) return collection.finish(`worker ${worker.id}: ${message.error}`);
        collection.results.push(message.metrics ?? []);
        if (collection.waiting.size === 0) collection.finish();
        return;
      }
    }
  });
  cluster.on('exit', (worker) => {
    ready.delete(worker.id);
    for (const collection of collections.values()) {
      if (collection.waiting.delete(worker.id) && collection.waiting.size === 0) collection.finish();
    }
  });
}
