/**
 * The /metrics cluster protocol (src/metrics/cluster.ts) over a simulated cluster: messages go
 * through a JSON round trip as on Node's IPC channel, on later turns of the event loop. What the
 * two-worker process test cannot arrange: a worker that never said it is ready (still starting)
 * is not asked, a worker that exits during a scrape is not waited for, one that does not answer
 * fails the scrape (rather than a partial sum, which Prometheus would read as counters going
 * back), and other messages on the channel (the limiter's) pass by both ends.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { CounterFamily, registerCollected } from '../../src/metrics/collected.js';
import { serveClusterMetrics, WorkerMetrics, type ClusterLink, type PrimaryLink, type WorkerLink } from '../../src/metrics/cluster.js';
import { parseExposition, valueOf } from './prometheus-text.js';

const wire = (message: unknown): unknown => JSON.parse(JSON.stringify(message));

class FakeCluster extends EventEmitter {
  workers: FakeWorker[] = [];
  add(): FakeWorker {
    const worker = new FakeWorker(this.workers.length + 1, this);
    this.workers.push(worker);
    return worker;
  }
}

/** The primary's handle on a worker (`send` reaches the worker's `link`), and the worker's own link. */
class FakeWorker implements WorkerLink {
  connected = true;
  /** Drop what the primary sends (a worker stuck in a long task). */
  deaf = false;
  readonly link: PrimaryLink & EventEmitter;
  readonly seen: unknown[] = [];

  constructor(
    readonly id: number,
    private readonly cluster: FakeCluster,
  ) {
    const link = new EventEmitter() as PrimaryLink & EventEmitter;
    link.send = (message: unknown) => {
      if (!this.connected) return false;
      setImmediate(() => cluster.emit('message', this, wire(message)));
      return true;
    };
    this.link = link;
  }

  isConnected(): boolean {
    return this.connected;
  }

  send(message: unknown): boolean {
    this.seen.push(message);
    if (!this.deaf) setImmediate(() => this.link.emit('message', wire(message)));
    return true;
  }

  exit(): void {
    this.connected = false;
    this.cluster.emit('exit', this);
  }
}

/** A registry with one counter series at `value`, as a worker's. */
function registryWith(value: number): Registry {
  const registry = new Registry();
  const family = new CounterFamily('calls_total', 'Calls.');
  registerCollected(registry, family);
  family.series({ key: 'k' }).value = value;
  return registry;
}

function start(timeoutMs = 60_000) {
  const cluster = new FakeCluster();
  serveClusterMetrics(cluster as unknown as ClusterLink, timeoutMs);
  return cluster;
}

const total = (text: string) => valueOf(parseExposition(text), 'calls_total', { key: 'k' });
const nextTurns = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('the cluster metrics protocol', () => {
  it("sums every ready worker's figures, whichever worker asks", async () => {
    const cluster = start();
    const figures = [3, 5, 11];
    const workers = figures.map((value) => ({ handle: cluster.add(), value }));
    const metrics = workers.map(({ handle, value }) => new WorkerMetrics(handle.link, registryWith(value)));
    await nextTurns();
    for (const m of metrics) expect(total(await m.scrape())).toBe(3 + 5 + 11);
    const both = await Promise.all(metrics.map((m) => m.scrape()));
    expect(both.map(total)).toEqual([19, 19, 19]);
  });

  it('does not ask a worker that never said it is ready', async () => {
    const cluster = start(500);
    const ready = cluster.add();
    const starting = cluster.add(); // connected, but its WorkerMetrics does not exist yet
    const metrics = new WorkerMetrics(ready.link, registryWith(4));
    await nextTurns();
    expect(total(await metrics.scrape())).toBe(4);
    expect(starting.seen).toEqual([]);
  });

  it('no longer waits for a worker that exits during a scrape', async () => {
    const cluster = start(2_000);
    const staying = cluster.add();
    const leaving = cluster.add();
    const metrics = new WorkerMetrics(staying.link, registryWith(2));
    new WorkerMetrics(leaving.link, registryWith(100));
    await nextTurns();
    leaving.deaf = true;
    const scraping = metrics.scrape();
    await nextTurns();
    expect(leaving.seen).toContainEqual(expect.objectContaining({ proxygptMetrics: 'collect' }));
    leaving.exit();
    expect(total(await scraping)).toBe(2);
  });

  it('fails the scrape, naming the worker, when a ready worker does not answer in time', async () => {
    const cluster = start(50);
    const asking = cluster.add();
    const stuck = cluster.add();
    const metrics = new WorkerMetrics(asking.link, registryWith(1));
    new WorkerMetrics(stuck.link, registryWith(1));
    await nextTurns();
    stuck.deaf = true;
    await expect(metrics.scrape()).rejects.toThrow(new RegExp(`worker\\(s\\) ${stuck.id} did not send`));
  });

  it('lets other messages on the channel pass by, at both ends', async () => {
    const cluster = start();
    const worker = cluster.add();
    const metrics = new WorkerMetrics(worker.link, registryWith(6));
    for (const other of [null, 'text', { proxygptLimiter: 'calls', calls: [] }, { proxygptLimiter: 'outcomes', outcomes: [] }, { type: 'prom-client:getMetricsReq', requestId: 1 }]) {
      cluster.emit('message', worker, other);
      worker.link.emit('message', other);
    }
    await nextTurns();
    expect(total(await metrics.scrape())).toBe(6);
    metrics.close();
    expect(worker.link.listenerCount('message')).toBe(0);
  });
});
