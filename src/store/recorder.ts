/**
 * Usage recorder: the last step of the request path. Collects usage records in memory and writes
 * them to the store in batches (every `intervalMs` or `maxBatch` records), so no request waits on a
 * disk write for its own record. The refusal recorder does the same for the calls refused before
 * they were opened (the dashboard's rollups only); both are one `BatchRecorder` writing another
 * kind of record.
 *
 * When the store is briefly unreachable (it throws StoreUnavailable: Postgres gone, SQLite locked),
 * the records wait in a bounded queue and are written in order once it answers again, retried with
 * a backoff that doubles up to `retryMaxMs`. The log says so once when writes start failing and
 * once when they succeed again (with how many queued records were written); records that arrive
 * while the queue is full are dropped and counted, and the count is logged. Any other error is the
 * batch's own (the store refused it): reported to `onError` and not retried, as before.
 */
import { StoreUnavailable } from './errors.js';
import type { RefusalRecord, Store, UsageRecord } from '../contract.js';

/** Where the recorder says what happens to the queue (a pino logger fits). */
export interface RecorderLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface RecorderOptions {
  /** How often buffered records are written. Default 500 ms. */
  intervalMs?: number;
  /** Records per write (and the count that triggers one early). Default 500. */
  maxBatch?: number;
  /** Records kept while the store is unreachable; more are dropped (and counted). Default 100,000. */
  maxQueued?: number;
  /** Longest pause between two retries while the store is unreachable. Default 10 s. */
  retryMaxMs?: number;
  /** How long close() keeps retrying an unreachable store before it gives the queue up. Default 3 s. */
  closeTimeoutMs?: number;
  /** Default: warnings and errors go to `onError`, the rest nowhere. */
  log?: RecorderLog;
}

export interface RecorderStats {
  /** Records waiting to be written now. */
  queued: number;
  /** Records given up: past the queue bound, or still queued when close() gave up. */
  dropped: number;
  /** Records the store accepted. */
  written: number;
  /** Records in batches the store refused for a reason of their own (not an outage). */
  failed: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** What a recorder writes, and how its log lines name it. */
interface RecordKind<T> {
  write(batch: readonly T[]): Promise<void>;
  /** `usage record`: the singular, as in "usage record queue is full". */
  one: string;
  /** `records`: what "store reachable again: wrote N queued …" says. */
  queued: string;
}

export class BatchRecorder<T> {
  private queue: T[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  /** A write is scheduled or running: the timer and record() do not pile up more. */
  private scheduled = false;
  private readonly counters = { dropped: 0, written: 0, failed: 0 };
  private readonly intervalMs: number;
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private readonly retryMaxMs: number;
  private readonly closeTimeoutMs: number;
  private readonly log: RecorderLog;

  /** Set while the store is unreachable. */
  private outage: { since: number; retryAt: number; delayMs: number; writtenAfter: number } | null = null;
  /** Records dropped past the bound and not yet reported in the log. */
  private droppedUnreported = 0;

  constructor(
    private readonly kind: RecordKind<T>,
    private readonly onError: (err: unknown) => void,
    options: RecorderOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 500;
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.maxQueued = Math.max(1, options.maxQueued ?? 100_000);
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 3_000;
    this.log = options.log ?? {
      info: () => undefined,
      warn: (_fields, msg) => onError(new Error(msg)),
      error: (_fields, msg) => onError(new Error(msg)),
    };
    this.timer = setInterval(() => this.schedule(), this.intervalMs);
    this.timer.unref();
  }

  record(record: T): void {
    if (this.queue.length >= this.maxQueued) {
      this.counters.dropped++;
      if (this.droppedUnreported++ === 0) {
        this.log.warn({ maxQueued: this.maxQueued }, `${this.kind.one} queue is full (${this.maxQueued} records): dropping new records, counted`);
      }
      return;
    }
    this.queue.push(record);
    if (this.queue.length >= this.maxBatch) this.schedule();
  }

  stats(): RecorderStats {
    return { queued: this.queue.length, ...this.counters };
  }

  /**
   * Writes everything queued so far, now (even while backing off from an outage; then it tries
   * once and leaves the records queued if the store is still unreachable). Calls are serialised.
   */
  flush(): Promise<void> {
    return this.enqueue(() => this.drain());
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    const deadline = Date.now() + this.closeTimeoutMs;
    while (this.outage !== null && this.queue.length > 0 && Date.now() < deadline) {
      await sleep(Math.min(this.outage.delayMs, Math.max(0, deadline - Date.now())));
      await this.flush();
    }
    if (this.queue.length > 0) {
      const lost = this.queue.length;
      this.queue = [];
      this.counters.dropped += lost;
      this.log.error({ lost }, `store unreachable at shutdown: ${lost} ${this.kind.one}s were not written`);
    }
    this.reportDrops();
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.flushing = this.flushing.then(task);
    return this.flushing;
  }

  /** A write from the timer or a full batch: at most one waiting, and none before the retry time. */
  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    if (this.outage !== null && Date.now() < this.outage.retryAt) return;
    this.scheduled = true;
    void this.enqueue(async () => {
      this.scheduled = false;
      await this.drain();
    });
  }

  /** Writes batch after batch from the head of the queue until it is empty or the store is unreachable. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.maxBatch);
      try {
        await this.kind.write(batch);
      } catch (err) {
        if (err instanceof StoreUnavailable) return this.failing(err);
        this.queue.splice(0, batch.length);
        this.counters.failed += batch.length;
        this.onError(err);
        continue;
      }
      this.queue.splice(0, batch.length);
      this.counters.written += batch.length;
      if (this.outage !== null) this.outage.writtenAfter += batch.length;
    }
    if (this.outage !== null) this.recovered();
    this.reportDrops();
  }

  private failing(err: StoreUnavailable): void {
    const now = Date.now();
    if (this.outage === null) {
      this.outage = { since: now, retryAt: now + this.intervalMs, delayMs: this.intervalMs, writtenAfter: 0 };
      this.log.warn({ err, queued: this.queue.length }, `${this.kind.one}s are queued: store unreachable`);
      return;
    }
    this.outage.delayMs = Math.min(this.outage.delayMs * 2, this.retryMaxMs);
    this.outage.retryAt = now + this.outage.delayMs;
  }

  private recovered(): void {
    const { since, writtenAfter } = this.outage!;
    this.outage = null;
    const dropped = this.droppedUnreported;
    this.droppedUnreported = 0;
    const fields = { written: writtenAfter, dropped, outageMs: Date.now() - since };
    const wrote = `store reachable again: wrote ${writtenAfter} queued ${this.kind.queued}`;
    if (dropped === 0) this.log.info(fields, wrote);
    else this.log.warn(fields, `${wrote}; ${dropped} ${this.kind.queued} were dropped past the queue bound (${this.maxQueued})`);
  }

  private reportDrops(): void {
    if (this.droppedUnreported === 0) return;
    const dropped = this.droppedUnreported;
    this.droppedUnreported = 0;
    this.log.warn({ dropped }, `${dropped} ${this.kind.one}s were dropped past the queue bound (${this.maxQueued})`);
  }
}

/** Writes each proxied call's usage record (http/call-record.ts), in batches. */
export class UsageRecorder extends BatchRecorder<UsageRecord> {
  constructor(store: Pick<Store, 'recordUsage'>, onError: (err: unknown) => void, options: RecorderOptions = {}) {
    super({ write: (batch) => store.recordUsage(batch), one: 'usage record', queued: 'records' }, onError, options);
  }
}

/**
 * Writes the calls refused before they were opened (every upstream out: 429 or 503) to the
 * store's rollups, in batches; never usage records (see Store.recordRefusals).
 */
export class RefusalRecorder extends BatchRecorder<RefusalRecord> {
  constructor(store: Pick<Store, 'recordRefusals'>, onError: (err: unknown) => void, options: RecorderOptions = {}) {
    super({ write: (batch) => store.recordRefusals(batch), one: 'refusal record', queued: 'refusal records' }, onError, options);
  }
}
