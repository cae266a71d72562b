/**
 * Usage recorder: the last step of the request path. Collects usage records in memory and writes
 * them to the store in batches (every `intervalMs` or `maxBatch` records), so no request waits on a
 * disk write for its own record.
 */
import type { Store, UsageRecord } from './store.js';

export class UsageRecorder {
  private buffer: UsageRecord[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly onError: (err: unknown) => void,
    intervalMs = 500,
    private readonly maxBatch = 500,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  record(record: UsageRecord): void {
    this.buffer.push(record);
    if (this.buffer.length >= this.maxBatch) void this.flush();
  }

  /** Writes everything buffered so far. Safe to call at any time; calls are serialised. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.buffer.length === 0) return;
      const batch = this.buffer;
      this.buffer = [];
      try {
        await this.store.recordUsage(batch);
      } catch (err) {
        this.onError(err);
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
